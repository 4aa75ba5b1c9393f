"""cffi (API mode) binding of libseccomp: the seccomp compiler, as in runc,
crun and youki.  A separate extension from _native so that containers
without a profile never load libseccomp."""

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef("""
typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;
enum scmp_compare { SCMP_CMP_NE = 1, SCMP_CMP_LT = 2, SCMP_CMP_LE = 3, SCMP_CMP_EQ = 4,
                    SCMP_CMP_GE = 5, SCMP_CMP_GT = 6, SCMP_CMP_MASKED_EQ = 7 };
struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a; scmp_datum_t datum_b; };
struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
enum scmp_filter_attr { SCMP_FLTATR_ACT_DEFAULT = 1, SCMP_FLTATR_ACT_BADARCH = 2, SCMP_FLTATR_CTL_NNP = 3,
                        SCMP_FLTATR_CTL_TSYNC = 4, SCMP_FLTATR_API_TSKIP = 5, SCMP_FLTATR_CTL_LOG = 6,
                        SCMP_FLTATR_CTL_SSB = 7, SCMP_FLTATR_CTL_OPTIMIZE = 8, SCMP_FLTATR_API_SYSRAWRC = 9 };
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
uint32_t seccomp_arch_native(void);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                           const struct scmp_arg_cmp *arg_array);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
const struct scmp_version *seccomp_version(void);
unsigned int seccomp_api_get(void);
""")
ffibuilder.set_source("ocirun._seccomp_c", "#include <seccomp.h>", libraries=["seccomp"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
