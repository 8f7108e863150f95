//! GPUs, through burn's CubeCL backends (only with the `cuda` or `wgpu` cargo feature). The
//! IR names GPUs `cuda:N`; with the `cuda` feature that is burn's N-th CUDA device, with only
//! `wgpu` the N-th GPU adapter burn's wgpu runtime enumerates. wgpu also offers adapters that
//! are no card (Mesa's llvmpipe software rasterizer, which burn enumerates on a machine without
//! any GPU): those are left out, as cubecl reports them (no physical device). Enumeration opens
//! the drivers once per process; a machine without a driver or a GPU lists none (burn
//! panicking there counts as none), and every `cuda:N` is then unsupported.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use burn::tensor::{Device as BurnDevice, DeviceType};
use dlbench_core::{Device, Error, Result};

use crate::NAME;

/// The GPUs burn finds in this process, in its order.
fn found() -> &'static [BurnDevice] {
    static FOUND: OnceLock<Vec<BurnDevice>> = OnceLock::new();
    FOUND.get_or_init(|| {
        catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "cuda")]
            let kind = DeviceType::Cuda;
            #[cfg(not(feature = "cuda"))]
            let kind = DeviceType::Wgpu;
            BurnDevice::enumerate(kind)
                .into_iter()
                .filter(|device| {
                    cfg!(feature = "cuda")
                        || device
                            .identity()
                            .is_some_and(|identity| identity.physical.is_some())
                })
                .collect()
        }))
        .unwrap_or_default()
    })
}

/// `cuda:0`, `cuda:1`... for each GPU found.
pub(crate) fn devices() -> Vec<Device> {
    (0..found().len()).map(Device::Cuda).collect()
}

/// burn's device for `cuda:i`, or unsupported when there is no such GPU here.
pub(crate) fn device(i: usize) -> Result<BurnDevice> {
    found().get(i).cloned().ok_or_else(|| {
        Error::unsupported(
            NAME,
            format!(
                "device cuda:{i}: burn finds {} GPU(s) on this machine",
                found().len()
            ),
        )
    })
}
