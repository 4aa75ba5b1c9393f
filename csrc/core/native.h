/* Parent-side calls Python lacks, bound with cffi (ocirun/_native_build.py). */
int ocirun_set_child_subreaper(int on);
int ocirun_set_pdeathsig(int sig);
int ocirun_cgroup_device_attach(const void *insns, unsigned int ninsns, int cgroup_fd, char *log,
                                unsigned int logsz);
int ocirun_idmapped_tree(const char *source, int recursive, int userns_fd);
int ocirun_userns_fd(const char *uid_map, const char *gid_map);
