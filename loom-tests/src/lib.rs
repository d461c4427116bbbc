//! loom models live in `tests/`; build with `RUSTFLAGS="--cfg loom"`.
