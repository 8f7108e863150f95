// Full float32 precision for libtorch's CUDA convolutions, RNNs and matrix products.
//
// libtorch's defaults let cuDNN convolutions and RNNs compute float32 in TF32 (a 10-bit
// mantissa, relative error ~1e-3): on an H200 the seed LSTM then disagrees with the f64
// reference by 1e-4 absolute, outside the ONNX-style tolerance every other backend meets.
// dlbench compares float32 computations, so it asks for IEEE float32 everywhere, as
// `torch.backends.cudnn.allow_tf32 = False` does in Python. tch has no binding for it.
//
// Returns NULL on success, else an error message allocated with malloc (free it with
// `dlbench_free_string`).

#include <ATen/Context.h>

#include <cstdlib>
#include <cstring>
#include <exception>

extern "C" char *dlbench_ieee_float32_on_cuda() {
  try {
    auto &context = at::globalContext();
    for (auto op : {at::Float32Op::CONV, at::Float32Op::RNN, at::Float32Op::MATMUL}) {
      context.setFloat32Precision(at::Float32Backend::CUDA, op, at::Float32Precision::IEEE);
    }
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
