//! With the `tch` feature, links the benchmarks against libtorch (see `dlbench-torch-link`).

fn main() {
    dlbench_torch_link::link_libtorch();
}
