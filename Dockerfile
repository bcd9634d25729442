# pc-autoscaler as a container (sidecar or standalone): the static musl binary, CA
# certificates and a non-root user, from scratch; nothing else.
#
#   bash scripts/package.sh     # stages target/package/image-root and builds this image
#   buildah bud --storage-driver vfs --isolation chroot -t pc-autoscaler .   # or docker build
#
# Config: none is baked in. Mount yours at /etc/pc-autoscaler/config.toml; until then
# the container refuses to start ("cannot read config file", exit 2) rather than scale
# anything on an example's behalf.
# Port: 9464 on all interfaces (/metrics, /healthz, /readyz): PC_AUTOSCALER_LISTEN
# overrides daemon.listen, so the probes reach it whatever the config says.
# User: 65532 (nonroot). AWS credentials come from the standard chain: the pod's
# service account (IRSA), the task role, or AWS_* variables.

FROM scratch
COPY target/package/image-root/ /
ENV PC_AUTOSCALER_LISTEN=0.0.0.0:9464
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/bin/pc-autoscaler"]
CMD ["run", "--config", "/etc/pc-autoscaler/config.toml"]
