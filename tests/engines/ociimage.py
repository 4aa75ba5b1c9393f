"""Build a local busybox image archive that every engine can import, with no
registry: the rootfs comes from bundles/busybox/build-rootfs.sh (Debian's
busybox-static) and goes into ONE uncompressed layer.

The archive holds both an OCI image layout (oci-layout, index.json,
blobs/sha256/...) for `ctr images import` / `podman load`, and a docker-save
style manifest.json (pointing at the same blobs) for `docker load` of
docker 20.10, which does not read OCI layouts."""

import hashlib
import io
import json
import os
import subprocess
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_ROOTFS = os.path.join(REPO, "bundles", "busybox", "build-rootfs.sh")

NAME = "ocirun-busybox"
TAG = "latest"
FULL_REF = f"docker.io/library/{NAME}:{TAG}"


def build_rootfs(dest):
    subprocess.run([BUILD_ROOTFS, dest], check=True, stdout=subprocess.DEVNULL)
    return dest


def _root_owned(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = 0
    return ti


def layer_tar(rootfs):
    """The rootfs as an uncompressed tar, owned by root, paths relative."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name, filter=_root_owned)
    return buf.getvalue()


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_archive(rootfs, dest, env=None, cmd=("sh",)):
    layer = layer_tar(rootfs)
    layer_digest = _digest(layer)
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": list(cmd),
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ocirun tests: busybox-static rootfs"}],
    }
    config_b = json.dumps(config, sort_keys=True).encode()
    config_digest = _digest(config_b)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }
    manifest_b = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = _digest(manifest_b)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_b),
            "annotations": {"io.containerd.image.name": FULL_REF, "org.opencontainers.image.ref.name": TAG},
        }],
    }

    def blob(d):
        return "blobs/sha256/" + d.split(":", 1)[1]

    docker_manifest = [{"Config": blob(config_digest), "RepoTags": [f"{NAME}:{TAG}"],
                        "Layers": [blob(layer_digest)]}]
    files = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index).encode()),
        ("manifest.json", json.dumps(docker_manifest).encode()),
        (blob(config_digest), config_b),
        (blob(manifest_digest), manifest_b),
        (blob(layer_digest), layer),
    ]
    with tarfile.open(dest, "w") as tf:
        for d in ("blobs", "blobs/sha256"):
            ti = _root_owned(tarfile.TarInfo(d))
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
        for name, data in files:
            ti = _root_owned(tarfile.TarInfo(name))
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return {"path": dest, "config_digest": config_digest, "manifest_digest": manifest_digest}


def rootfs_tar(rootfs, dest):
    """Plain rootfs tarball (for `docker import` / `podman import`)."""
    with open(dest, "wb") as f:
        f.write(layer_tar(rootfs))
    return dest
