# syntax=docker/dockerfile:1
# docupod: one image, every role (`docupod serve --role all|gateway,ingest,…`). See deploy/helm/docupod for Kubernetes
# and compose.yaml for a local stack.
#
#   docker build -t docupod .
#   docker run --rm -p 8080:8080 --read-only --cap-drop ALL -v docupod-data:/data docupod
#
# Stages: deps (`npm ci`) → build (tsc → dist/) → prod-deps (`npm prune --omit=dev`, pruned) → runtime.
# The runtime stage copies only dist/, the production node_modules, bin/ and the SQL migrations; it runs as uid 1000
# and writes only to /data (DOCUPOD_DATA_DIR) and /tmp, so `--read-only` / readOnlyRootFilesystem work.
#
# Build arguments:
#   BASE_IMAGE           Node.js 20 base (default node:20-bookworm-slim; any Debian/Ubuntu-based Node ≥ 20.19 image)
#   VERSION, REVISION, CREATED   values for the OCI labels (CI passes the git tag, commit and date)
#   NODE_EXTRA_CA_CERTS  path of an extra CA bundle for `npm ci` behind a TLS-intercepting proxy; only the build
#                        stages see it, never the final image (mount the file with `-v host.crt:/run/host-ca.crt:ro`)
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- deps: every dependency, for the TypeScript build ---------------------------------------------------------------
FROM ${BASE_IMAGE} AS deps
ARG NODE_EXTRA_CA_CERTS
# Optional native helpers must not fetch binaries from outside the npm registry during install.
ENV ONNXRUNTIME_NODE_INSTALL=skip NODE_LLAMA_CPP_POSTINSTALL=skip npm_config_update_notifier=false
WORKDIR /app
# npm workspaces: the web UI's manifest takes part in the install.
COPY package.json package-lock.json .npmrc ./
COPY web/package.json ./web/package.json
RUN npm ci --no-audit --no-fund

# ---- build: TypeScript → dist/ ---------------------------------------------------------------------------------------
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
# tsc → dist/ and the web UI (vite) → web/dist/
RUN npm run build

# ---- prod-deps: production dependencies only -------------------------------------------------------------------------
# `npm prune --omit=dev` on the full install (no second download). A stage of its own so that the npm cache,
# NODE_EXTRA_CA_CERTS and build tools never reach the final image; the runtime stage copies node_modules from here.
FROM deps AS prod-deps
# Some packages ship native binaries for every platform (onnxruntime-node: ~245 MB of darwin/win32/other-arch
# libraries) and WebAssembly builds that Node never loads when the native runtime is present (onnxruntime-web's .wasm,
# ~86 MB). Set PRUNE_FOREIGN_BINARIES=false to keep them all.
ARG PRUNE_FOREIGN_BINARIES=true
RUN npm prune --omit=dev --no-audit --no-fund \
 # Type declarations, source maps and docs are never loaded at run time.
 && find node_modules \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' -o -name '*.markdown' \) -type f -delete \
 && if [ "$PRUNE_FOREIGN_BINARIES" = "true" ]; then \
      arch=$(node -p process.arch); \
      for d in node_modules/onnxruntime-node/bin/napi-v*; do \
        [ -d "$d" ] || continue; \
        find "$d" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +; \
        [ -d "$d/linux" ] && find "$d/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +; \
      done; \
      rm -f node_modules/onnxruntime-web/dist/*.wasm; \
      # node-llama-cpp (llamacpp adapters): only this platform's prebuilt llama.cpp, not the other architectures'
      # (~33 MB), nor the llama.cpp sources it would build from (~35 MB; docupod never builds: build 'never').
      for d in node_modules/@node-llama-cpp/*; do \
        [ "$d" = "node_modules/@node-llama-cpp/linux-$arch" ] || rm -rf "$d"; \
      done; \
      rm -f node_modules/node-llama-cpp/llama/gitRelease.bundle; \
    fi \
 && rm -rf /root/.npm

# ---- intent-model: the intent classifier, trained at build time ------------------------------------------------------
# As the fifth seed does, the image ships a model trained from deploy/models/intents.csv while it is built (seconds;
# the held-out accuracy is printed in the build log). The models role serves it at /models/intent-classifier/predict.
FROM build AS intent-model
COPY deploy/models/intents.csv deploy/models/intents.csv
RUN node dist/main.js models train-intent deploy/models/intents.csv --out /out/intent-classifier/1

# ---- runtime ---------------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production \
    DOCUPOD_DATA_DIR=/data \
    DOCUPOD_HOST=0.0.0.0 \
    DOCUPOD_PORT=8080 \
    DOCUPOD_LOG_FORMAT=json \
    DOCUPOD_MODELS_REPOSITORY=/app/models \
    HOME=/tmp
WORKDIR /app
# Application files belong to root and are read-only for the service user.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# dist/roles/web serves the single-page UI from ../../../web/dist.
COPY --from=build /app/web/dist ./web/dist
COPY package.json ./
COPY bin ./bin
# dist/storage/database.js reads the checked-in SQL migrations from ../../src/storage/migrations.
COPY src/storage/migrations ./src/storage/migrations
# intent-model: the model repository baked into the image; mount another at /app/models (or set
# DOCUPOD_MODELS_REPOSITORY) to serve your own models.
COPY --from=intent-model /out ./models
RUN ln -s /app/bin/docupod.js /usr/local/bin/docupod \
 && mkdir -p /data && chown 1000:1000 /data && chmod 0750 /data
# Embedded data (PGlite, blobs). A volume, so `--read-only` works without further flags; mount a real one to keep data.
VOLUME ["/data"]
USER 1000:1000
EXPOSE 8080
# No curl in the slim base: node itself checks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||process.env.DOCUPOD_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# Labels last: a new revision or date changes only this layer.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="docupod" \
      org.opencontainers.image.description="Chat with your documents and serve models: one self-hosted program, many roles" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="docupod" \
      org.opencontainers.image.source="https://github.com/docupod/docupod" \
      org.opencontainers.image.documentation="https://github.com/docupod/docupod#readme" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENTRYPOINT ["node", "/app/bin/docupod.js"]
CMD ["serve", "--role", "all"]
