# learnchain node image: a statically linked, stripped binary on an empty base.
#
# Nothing is pulled from a registry. Build the binary first (scripts/cluster.sh up does all
# of this):
#
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
#       --target x86_64-unknown-linux-gnu -p learnchain-node
#   mkdir -p target-docker/empty
#   strip -o target-docker/learnchain \
#       "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/learnchain"
#   docker build -t learnchain:local .
#
# The image runs as nobody (65534:65534). /data and /genesis exist and belong to that user,
# so a named volume mounted on either starts out writable by the node.
FROM scratch
COPY --chown=65534:65534 target-docker/empty /data
COPY --chown=65534:65534 target-docker/empty /genesis
COPY target-docker/learnchain /learnchain
USER 65534:65534
# libp2p and JSON-RPC
EXPOSE 30333 8545
ENTRYPOINT ["/learnchain"]
CMD ["--help"]
