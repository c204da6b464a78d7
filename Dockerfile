# One image, both roles: `sluice operator ...` and `sluice worker --config ...`
# (the ENTRYPOINT is the sluice CLI). Multi-stage: the build stage compiles
# the TypeScript and prunes dev dependencies; the runtime stage holds only
# node, the compiled code, production dependencies, the CRD and the bundled
# ONNX models, runs as a non-root user and needs no writable root file system.
#
#   docker build -t sluice:dev .                                    # public base
#   bash hack/build-image.sh                                        # here: local base, no registry
ARG BASE_IMAGE=node:20-bookworm-slim
# The build stage may need more than the runtime (here: the CA of this network's registry proxy).
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` would compile before the sources are here, and no
# dependency needs an install script (onnxruntime-node ships its CPU binaries).
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY lib ./lib
COPY cli ./cli
COPY operator ./operator
COPY workers ./workers
COPY crds ./crds
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts \
 # onnxruntime-node carries binaries for every OS and CPU (~290 MB): keep this one's.
 && ort=node_modules/onnxruntime-node/bin/napi-v6 \
 && find "$ort" -mindepth 1 -maxdepth 1 ! -name "$(node -p process.platform)" -exec rm -rf {} + \
 && find "$ort"/*/ -mindepth 1 -maxdepth 1 ! -name "$(node -p process.arch)" -exec rm -rf {} + \
 && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && mkdir -p /out/workers/models \
 && cp -r package.json bin dist crds node_modules /out/ \
 && cp -r workers/models/bundled /out/workers/models/bundled

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Sluice operator and stream workers (churn and cart scoring)" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
COPY --from=build /out/ /app/
# Numeric ids so that Kubernetes can verify runAsNonRoot; nothing under /app is writable by them.
USER 65532:65532
ENV NODE_ENV=production HOME=/tmp
# 8080/8081: operator metrics and health probes; 9090: worker metrics, /healthz, /readyz.
EXPOSE 8080 8081 9090
ENTRYPOINT ["node", "/app/bin/sluice.js"]
CMD ["--help"]
