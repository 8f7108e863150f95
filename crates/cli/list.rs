//! `dlbench list`: backends in this build, with their capabilities, and devices found.

use std::process::ExitCode;

use serde_json::json;

use crate::registry;

fn cuda_devices() -> Vec<String> {
    dlbench_harness::environment::devices()
        .into_iter()
        .filter(|d| *d != dlbench_core::Device::Cpu)
        .map(|d| d.to_string())
        .collect()
}

pub fn list(as_json: bool) -> anyhow::Result<ExitCode> {
    let backends = registry::backends();
    let cuda = cuda_devices();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if as_json {
        let built: Vec<_> = backends
            .iter()
            .map(|b| json!({"name": b.name(), "version": b.version(), "capabilities": b.capabilities()}))
            .collect();
        let missing: Vec<_> = registry::not_built()
            .iter()
            .map(|(name, why)| json!({"name": name, "reason": why}))
            .collect();
        let doc = json!({
            "backends": built,
            "not_built": missing,
            "devices": {"cpu": {"cores": cores}, "cuda": cuda},
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Backends in this build:");
    for b in &backends {
        let caps = b.capabilities();
        let can: Vec<&str> = [
            (caps.inference, "inference"),
            (caps.training, "training"),
            (caps.intermediates, "intermediates"),
        ]
        .iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, what)| *what)
        .collect();
        let devices: Vec<String> = caps.devices.iter().map(|d| d.to_string()).collect();
        println!(
            "  {:<10} {:<36} {:<36} devices: {}",
            b.name(),
            b.version(),
            can.join(", "),
            devices.join(", ")
        );
    }
    println!("Not in this build:");
    for (name, why) in registry::not_built() {
        println!("  {name:<10} {why}");
    }
    println!("Devices found:");
    println!("  cpu        {cores} cores");
    if cuda.is_empty() {
        println!("  cuda       none (no NVIDIA driver found)");
    } else {
        println!("  cuda       {}", cuda.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
