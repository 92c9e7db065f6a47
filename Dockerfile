# sip-xmpp-bridge image: one image for every role (the config file's `role`, or --role).
#   docker build -t sip-xmpp-bridge .
#   docker run -v $PWD/bridge.yaml:/etc/sip-xmpp-bridge/bridge.yaml:ro sip-xmpp-bridge

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` would build before the sources are here; the build runs below.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No compiler here, so no `prepare`; msgpackr (BullMQ) uses its prebuilt optional package.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY deploy/bridge/healthcheck.mjs ./healthcheck.mjs
# The node image's unprivileged user; SIP on 5060 needs no privilege.
USER node
EXPOSE 5060/udp 5060/tcp
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start", "--config", "/etc/sip-xmpp-bridge/bridge.yaml"]
