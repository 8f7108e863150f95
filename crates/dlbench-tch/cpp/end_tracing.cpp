// Ends a trace that torch-sys's `atm_create_for_tracing` started, with ONE graph output: the
// traced tensor itself, or a tuple of them when there are several.
//
// tch's own `atm_end_tracing` registers each tensor as a separate graph output. Such a method
// runs in process, but TorchScript refuses to serialize it ("Exportable methods must have a
// single return value"), so a model with several outputs (the VAE's recon, mu, logvar) could
// not be saved. Registering a tuple is what `torch.jit.trace` does in Python: the tracer turns
// it into a `prim::TupleConstruct`. Everything else here mirrors `atm_end_tracing` in
// torch-sys 0.22.0's libtch/torch_api.cpp, so the module is the one tch would have built.
//
// It also names the method's arguments after the graph inputs (`forward(self, x, eps)` in
// `module.code`, where tch leaves `argument_1, argument_2`) and gives the module the `training`
// attribute that `torch.jit.trace` modules have (false: the trace is of inference), so that
// `module.training` reads in Python as it does for any traced module.
//
// Returns NULL on success, else an error message allocated with malloc (free it with
// `dlbench_free_string`); on error the trace is abandoned, so a later trace can start.

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/fixup_trace_scope_blocks.h>
#include <torch/csrc/jit/passes/normalize_ops.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

extern "C" char *dlbench_end_tracing(void *module, const char *fn_name, const char **arg_names,
                                     int nargs, void **outputs, int noutputs) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto state = torch::jit::tracer::getTracingState();
    if (state == nullptr) {
      throw std::invalid_argument("not in tracing mode");
    }
    if (noutputs < 1) {
      throw std::invalid_argument("a traced method needs at least one output");
    }
    c10::IValue result;
    if (noutputs == 1) {
      result = c10::IValue(*static_cast<at::Tensor *>(outputs[0]));
    } else {
      std::vector<c10::IValue> items;
      items.reserve(noutputs);
      for (int i = 0; i < noutputs; ++i) {
        items.emplace_back(*static_cast<at::Tensor *>(outputs[i]));
      }
      result = c10::IValue(c10::ivalue::Tuple::create(std::move(items)));
    }
    // Input 0 is `self`; the traced tensors follow in order.
    auto graph_inputs = state->graph->inputs();
    for (int i = 0; i < nargs && static_cast<size_t>(i) + 1 < graph_inputs.size(); ++i) {
      graph_inputs[i + 1]->setDebugName(arg_names[i]);
    }
    state->graph->registerOutput(state->getOutput(result, 0));
    torch::jit::FixupTraceScopeBlocks(state->graph, m);
    torch::jit::NormalizeOps(state->graph);
    torch::jit::tracer::setTracingState(nullptr);
    if (!m->type()->hasAttribute("training")) {
      m->register_attribute("training", c10::BoolType::get(), false);
    }
    auto fn = m->_ivalue()->compilation_unit()->create_function(fn_name, state->graph);
    m->type()->addMethod(fn);
    return nullptr;
  } catch (const std::exception &e) {
    if (torch::jit::tracer::isTracing()) {
      torch::jit::tracer::abandon();
    }
    return strdup(e.what());
  }
}

// Frees a string from `dlbench_end_tracing` or from torch-sys's `get_and_reset_last_err`
// (both allocate with malloc).
extern "C" void dlbench_free_string(char *s) { free(s); }
