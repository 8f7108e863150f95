//! `dlbench inspect` (a model summary) and `dlbench init` (save a spec's fresh model).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dlbench_core::ir::format_shape;
use dlbench_core::Dim;
use dlbench_spec::Spec;
use serde_json::json;

/// `batch x 64x6x6` (the batch first, then one sample's shape), or the plain shape.
fn shape_text(shape: &[Dim]) -> String {
    match shape.split_first() {
        Some((Dim::Batch, [])) => "batch".to_string(),
        Some((Dim::Batch, rest)) => format!("batch x {}", format_shape(rest)),
        _ => format_shape(shape),
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn si(n: u64) -> String {
    match n as f64 {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v}"),
    }
}

pub fn inspect(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let graph = &crate::load::load_graph(path)?;
    let values = graph.infer()?;
    let flops = dlbench_core::flops::graph_flops(graph)?;
    // By name once: looking each node's parameters up in the list is quadratic.
    let param_sizes: std::collections::HashMap<&str, usize> = graph
        .params
        .iter()
        .map(|p| (p.value.name.as_str(), p.value.numel_per_sample()))
        .collect();
    let rows: Vec<_> = graph
        .nodes
        .iter()
        .zip(&flops)
        .map(|(node, &f)| {
            let params = node
                .inputs
                .iter()
                .filter_map(|i| param_sizes.get(i.as_str()))
                .fold(0usize, |n, &p| n.saturating_add(p));
            (node, params, f)
        })
        .collect();
    let total_params = graph.parameter_count();
    let total_flops: u64 = flops.iter().sum();

    if as_json {
        let nodes: Vec<_> = rows
            .iter()
            .map(|(node, params, f)| {
                json!({
                    "name": node.name,
                    "op": node.op.name(),
                    "inputs": node.inputs,
                    "outputs": node.outputs.iter().map(|o| &values[o]).collect::<Vec<_>>(),
                    "parameters": params,
                    "flops_per_sample": f,
                })
            })
            .collect();
        let doc = json!({
            "name": graph.name,
            "source": path.display().to_string(),
            "inputs": graph.inputs,
            "outputs": graph.outputs.iter().map(|o| &values[o]).collect::<Vec<_>>(),
            "nodes": nodes,
            "parameters": total_params,
            "flops_per_sample": total_flops,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!("Model `{}` ({})", graph.name, path.display());
    let header = format!(
        "{:<16} {:<20} {:<24} {:>12} {:>14}",
        "Node", "Op", "Output shape", "Params", "FLOPs/sample"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for input in &graph.inputs {
        let v = &input.value;
        let role = serde_json::to_value(input.role)?;
        let op = format!("input ({})", role["kind"].as_str().unwrap_or("?"));
        println!(
            "{:<16} {:<20} {:<24} {:>12} {:>14}",
            v.name,
            op,
            shape_text(&v.shape),
            0,
            0
        );
    }
    for (node, params, f) in &rows {
        for (i, out) in node.outputs.iter().enumerate() {
            let (name, op) = if i == 0 {
                (node.name.as_str(), node.op.name())
            } else {
                ("", "")
            };
            let (p, fl) = if i == 0 {
                (thousands(*params as u64), thousands(*f))
            } else {
                (String::new(), String::new())
            };
            let shape = shape_text(&values[out].shape);
            let shape = if node.outputs.len() > 1 {
                format!("{shape} ({})", out.rsplit('.').next().unwrap_or(out))
            } else {
                shape
            };
            println!("{name:<16} {op:<20} {shape:<24} {p:>12} {fl:>14}");
        }
    }
    println!("{}", "-".repeat(header.len()));
    println!(
        "Total parameters: {} ({:.1} KiB as f32)",
        thousands(total_params as u64),
        total_params as f64 * 4.0 / 1024.0
    );
    println!(
        "Forward FLOPs per sample: {} ({})",
        thousands(total_flops),
        si(total_flops)
    );
    let outputs: Vec<String> = graph
        .outputs
        .iter()
        .map(|o| format!("{o}: {} {}", values[o].dtype, shape_text(&values[o].shape)))
        .collect();
    println!("Outputs: {}", outputs.join(", "));
    Ok(ExitCode::SUCCESS)
}

pub fn init(spec: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let model = Spec::load(spec)?.build_model()?;
    model
        .save(out)
        .with_context(|| format!("saving the model of {}", spec.display()))?;
    eprintln!(
        "wrote {} ({} parameters)",
        out.display(),
        thousands(model.parameter_count() as u64)
    );
    Ok(ExitCode::SUCCESS)
}
