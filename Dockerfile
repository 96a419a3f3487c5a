# kube-idp's container image: `make image`, or `docker build -t kube-idp:dev .`
#
# The binary carries its pages and stylesheet (askama compiles templates/ in, static/style.css
# is included at build time), so the runtime image holds the binary and the shared libraries
# it links (OpenSSL) only. It runs as the unprivileged user 65532 and needs no writable file
# system, matching the chart's security context.

FROM rust:1-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kube-idp \
    && install -m 0755 target/release/kube-idp /usr/local/bin/kube-idp

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/kube-idp /usr/local/bin/kube-idp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kube-idp"]
# The chart passes `serve --kubernetes ...`; run alone, the image lists its commands.
CMD ["--help"]
