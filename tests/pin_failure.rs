//! `ConfigError::PinFailed`: when the OS refuses to pin a worker, `build`
//! fails with a typed error and stops the workers it had started. The refusal
//! is injected (feature `fault-injection`): on a healthy machine pinning to an
//! online core always succeeds.

use pinbus::{ConfigError, Engine, Pinning};

#[test]
fn a_refused_pin_is_a_typed_error() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let Some(core) = cores.last().map(|c| c.id) else {
        return;
    };
    pinbus::fault::refuse_pinning_to(core);
    let err = Engine::builder()
        .workers(1)
        .pinning(Pinning::Cores(vec![core]))
        .build()
        .expect_err("pinning was made to fail");
    assert!(
        matches!(err, ConfigError::PinFailed { worker: 0, core: c } if c == core),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("could not pin worker 0") && text.contains("Pinning::None"),
        "{text}"
    );
}
