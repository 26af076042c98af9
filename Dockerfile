# The operator's image for those with Docker: the same files, user, entrypoint and command as
# `cargo xtask image` writes without one (a packaging test compares them). Both platforms:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/usersync:TAG --push .
# Each platform builds its static musl binary natively, or under buildx's emulation.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools ca-certificates
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" && rustup target add "$target" && \
    TARGET_CC=musl-gcc cargo build --release --locked --target "$target" --bin usersync && \
    cp "target/$target/release/usersync" /usersync

# No base image: the binary is static and needs only these files. Distroless static has the same
# nonroot user (65532) and CA roots, plus tzdata and /tmp, which usersync does not use.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY image/passwd /etc/passwd
COPY image/group /etc/group
COPY --from=build /usersync /usersync
USER 65532:65532
ENTRYPOINT ["/usersync"]
CMD ["run"]
