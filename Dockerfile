# roomsync container image: build with the pinned toolchain, run on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin roomsync

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/roomsync /usr/local/bin/roomsync
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/roomsync"]
