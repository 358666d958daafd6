# One image for all five Lacewing binaries: lacewing-scheduler, lacewing-manager,
# dfdaemon, dfget and dfcache, each on PATH.
#
#   docker build -t ghcr.io/lacewing/lacewing:0.1.0 .
#   scripts/build-image.sh            # the same file with buildah, no Docker daemon
#
# Users. The image runs as the unprivileged user lacewing (65532:65532) by
# default, and the scheduler, the manager and the seed peers stay that way: they
# only listen on ports above 1024 and write to their own volumes (the seed peer's
# PVC through fsGroup, the manager's /tmp). The node dfdaemon of the Helm chart's
# DaemonSet, and its containerd-config init container, run as root (runAsUser: 0)
# because they write to directories on the node that root owns: the piece cache
# and the dfget socket directory (hostPaths that the kubelet creates as root) and
# containerd's /etc/containerd/certs.d. Without those hostPaths (a test, a docker
# run with a volume owned by 65532) dfdaemon runs as 65532 too.
#
# PID 1 is tini. A Node.js process as PID 1 gets no default signal disposition
# from the kernel: dfget installs no SIGTERM handler, so `docker stop` or a pod
# deletion would be ignored until the SIGKILL; and nothing would reap zombies.
# tini (Debian's package) forwards signals to the one child and reaps. The
# binaries themselves shut down cleanly on SIGTERM.

# The base must be a Debian bookworm image with node, npm and npx on PATH (the
# official node image, or the stand-in scripts/build-image.sh --local-base makes).
ARG BASE=node:24-bookworm-slim

# Behind a TLS-inspecting proxy, give npm and pnpm its CA as a build secret; it
# is mounted for the download steps only and never lands in a layer:
#   docker build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt .

# pnpm from the npm registry: corepack is not reliable (and is leaving Node).
FROM ${BASE} AS pnpm
ARG PNPM_VERSION=10.34.9
RUN --mount=type=secret,id=ca-certificates,required=false \
  if [ -s /run/secrets/ca-certificates ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca-certificates; fi \
  && npm install --global --no-fund --no-audit --no-update-notifier "pnpm@${PNPM_VERSION}" \
  && pnpm --version

# The workspace's manifests alone, for both install steps: copied before the
# sources, so a source change redoes neither install.
FROM scratch AS manifests
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml /
COPY packages/api/package.json /packages/api/
COPY packages/common/package.json /packages/common/
COPY packages/console/package.json /packages/console/
COPY packages/dfdaemon/package.json /packages/dfdaemon/
COPY packages/dfget/package.json /packages/dfget/
COPY packages/manager/package.json /packages/manager/
COPY packages/scheduler/package.json /packages/scheduler/
COPY packages/sources/package.json /packages/sources/

# Build with every dependency (TypeScript is a dev dependency).
FROM pnpm AS build
WORKDIR /src
COPY --from=manifests / ./
RUN --mount=type=cache,id=lacewing-pnpm-store,target=/pnpm-store,sharing=locked \
  --mount=type=secret,id=ca-certificates,required=false \
  if [ -s /run/secrets/ca-certificates ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca-certificates; fi \
  && pnpm install --frozen-lockfile --store-dir /pnpm-store --filter "lacewing..." --reporter append-only
COPY tsconfig.base.json ./
COPY packages packages
RUN pnpm exec tsc -b packages/dfdaemon packages/dfget packages/scheduler packages/manager packages/console \
  # Only what runs: no tests, declarations or build info in the image.
  && find packages/*/dist \( -name '*.spec.*' -o -name '*.d.ts' -o -name '*.d.ts.map' \) -delete \
  && mkdir /out \
  && for p in api common dfdaemon dfget manager scheduler sources; do \
       mkdir -p "/out/packages/$p" && cp -a "packages/$p/dist" "/out/packages/$p/"; \
       if [ -d "packages/$p/bin" ]; then cp -a "packages/$p/bin" "/out/packages/$p/"; fi; \
     done \
  # The web console the manager serves at /: its page and styles, and its compiled scripts.
  && mkdir -p /out/packages/console && cp -a packages/console/public packages/console/dist /out/packages/console/

# Production dependencies only, from the same lockfile and the same store.
FROM pnpm AS deps
WORKDIR /opt/lacewing
COPY --from=manifests / ./
RUN --mount=type=cache,id=lacewing-pnpm-store,target=/pnpm-store,sharing=locked \
  --mount=type=secret,id=ca-certificates,required=false \
  if [ -s /run/secrets/ca-certificates ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca-certificates; fi \
  && pnpm install --prod --frozen-lockfile --store-dir /pnpm-store --package-import-method copy --filter "lacewing..." --reporter append-only

FROM ${BASE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="lacewing" \
      org.opencontainers.image.description="Peer-to-peer distribution of container images and large files: lacewing-scheduler, lacewing-manager, dfdaemon, dfget, dfcache" \
      org.opencontainers.image.source="https://github.com/lacewing/lacewing" \
      org.opencontainers.image.url="https://github.com/lacewing/lacewing" \
      org.opencontainers.image.documentation="https://github.com/lacewing/lacewing/blob/main/README.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 65532 lacewing \
  && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/lacewing --no-create-home --shell /usr/sbin/nologin lacewing \
  # The daemon's default data and socket directories, writable without root.
  && install -d -o 65532 -g 65532 /var/lib/lacewing /run/lacewing
WORKDIR /opt/lacewing
COPY --from=deps /opt/lacewing ./
COPY --from=build /out ./
RUN for bin in dfdaemon/bin/dfdaemon dfget/bin/dfget dfget/bin/dfcache scheduler/bin/lacewing-scheduler manager/bin/lacewing-manager; do \
      ln -s "/opt/lacewing/packages/$bin.js" "/usr/local/bin/$(basename "$bin")"; \
    done \
  # Each binary starts and finds its modules.
  && for bin in dfdaemon dfget dfcache lacewing-scheduler lacewing-manager; do "$bin" --help >/dev/null; done
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["dfget", "--help"]
