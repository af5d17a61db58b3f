# tgploy in a container: a static binary in an empty image, running as an unprivileged
# user, with its config, ledger and temporary files under one volume.
#
#   docker build -t tgploy .              # compiles tgploy in the `build` stage below
#   .ci/build-image                       # compiles on the host; pulls no image
#
# The `build` stage leaves everything the runtime stage needs under /out:
#
#   /out/tgploy                           the binary, static (x86_64-unknown-linux-musl)
#   /out/bin/sh                           a static busybox, installed as `sh`: Dokploy
#                                         runs a schedule as `docker exec CONTAINER sh -c CMD`
#   /out/etc/ssl/certs/ca-certificates.crt  CA certificates (HTTPS to S3 and Telegram)
#   /out/etc/passwd, /out/etc/group       the user and group tgploy runs as (10001)
#   /out/var/lib/tgploy                   an empty directory, mode 0700, owned by 10001
#
# A machine that reaches no container registry builds the same layout itself and hands
# it in as that stage (`podman build --build-context build=DIR`, which is what
# .ci/build-image does): the stage is then neither built nor pulled, and `scratch` is
# no image at all.

FROM docker.io/library/rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev ca-certificates busybox-static
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && mkdir -p /out/etc/ssl/certs /out/var/lib/tgploy /out/bin \
 && cp target/x86_64-unknown-linux-musl/release/tgploy /out/tgploy \
 && cp /bin/busybox.static /out/bin/sh \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && echo 'tgploy:x:10001:10001:tgploy:/var/lib/tgploy:/sbin/nologin' > /out/etc/passwd \
 && echo 'tgploy:x:10001:' > /out/etc/group \
 && chown 10001:10001 /out/var/lib/tgploy \
 && chmod 0700 /out/var/lib/tgploy

FROM scratch

# Kept in step with Cargo.toml's version by a test; .ci/build-image passes it anyway.
ARG VERSION=0.1.0
# The repository the image was built from (.ci/build-image passes git's `origin`).
ARG SOURCE=""

LABEL org.opencontainers.image.title="tgploy" \
      org.opencontainers.image.description="Off-site disaster-recovery courier: delivers every new object version from S3-compatible buckets to a Telegram chat" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"

COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tgploy /usr/local/bin/tgploy
# A shell: a static busybox, called `sh`. Schedulers that run `sh -c "tgploy sync"` in
# the container (Dokploy's Schedules) need it; tgploy itself never runs a shell.
COPY --from=build /out/bin/sh /bin/sh
# The volume's directory, owned by the user in the image (mode 0700), so that a named
# volume mounted here starts out private and writable by it. Copied with its parents:
# a copy between stages keeps ownership and mode, while a directory that COPY creates
# as its destination would be root's.
COPY --from=build /out/var/ /var/

# Everything tgploy keeps is in the volume. There is no /tmp in an empty image:
# part files, and SQLite's own temporary files, go to tmp/ in the volume, which tgploy
# creates (mode 0700) when it first needs it. A container listens on every address of
# its own network namespace, or nothing outside it could reach the servers. The config
# file is optional, as the native binary's default places are: a container configured
# through its environment alone works, and `setup` writes the file here. (TGPLOY_CONFIG,
# set by a user, names a file that must exist.)
ENV PATH=/usr/local/bin:/bin \
    TGPLOY_DEFAULT_CONFIG=/var/lib/tgploy/config.toml \
    DATABASE_PATH=/var/lib/tgploy/ledger.sqlite3 \
    TGPLOY_TMP_DIR=/var/lib/tgploy/tmp \
    TMPDIR=/var/lib/tgploy/tmp \
    TGPLOY_WEBHOOK_LISTEN=0.0.0.0:8080 \
    TGPLOY_DASHBOARD_LISTEN=0.0.0.0:8088

VOLUME ["/var/lib/tgploy"]
WORKDIR /var/lib/tgploy
USER 10001:10001
EXPOSE 8080 8088

# `tgploy probe` GETs serve-webhook's /healthz at webhook.listen (TGPLOY_WEBHOOK_LISTEN)
# and exits 0 only on a 2xx answer. The dashboard's service gives its own URL
# (compose.yaml); one-shot runs turn the check off.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["tgploy", "probe"]

ENTRYPOINT ["tgploy"]
CMD ["--help"]
