// pdyolo — the command-line tool. Each pipeline stage is a subcommand (kCommands below, and version):
//   info, convert, export, prune, quantize, qat, forward, detect, eval, train, bench, demo, version
// Each command declares its flags once (a CommandSpec next to its code); `pdyolo help` and
// `pdyolo CMD --help` print them.
#include <cstring>
#include <iostream>
#include <string>

#include "cli_bench.hpp"
#include "cli_eval.hpp"
#include "cli_export.hpp"
#include "cli_model.hpp"
#include "cli_prune.hpp"
#include "cli_quantize.hpp"
#include "cli_train.hpp"
#include "shapes_demo.hpp"

namespace {

using pdyolo::cli::Args;
using pdyolo::cli::CommandSpec;

const CommandSpec& demo_spec() {
  static const CommandSpec spec{"demo", "train a small conv net on the built-in synthetic shapes task",
                                {{"--epochs", "N", "6", "epochs"}, {"--seed", "S", "0", "seed"}, pdyolo::cli::threads_flag()}};
  return spec;
}

int run_demo(const Args& args) {
  pdyolo::examples::ShapesDemoOptions options;
  options.epochs = args.integer("--epochs");
  options.seed = static_cast<uint64_t>(args.integer("--seed"));
  args.apply_threads();
  const auto history = pdyolo::examples::run_shapes_demo(options, &std::cout);
  std::cout << "loss " << history.front().loss << " -> " << history.back().loss << "\n";
  return 0;
}

struct Command {
  const CommandSpec& (*spec)();
  int (*run)(const Args&);
};

const Command kCommands[] = {
    {pdyolo::cli::info_spec, pdyolo::cli::run_info},     {pdyolo::cli::convert_spec, pdyolo::cli::run_convert},
    {pdyolo::cli::export_spec, pdyolo::cli::run_export},
    {pdyolo::cli::prune_spec, pdyolo::cli::run_prune},   {pdyolo::cli::quantize_spec, pdyolo::cli::run_quantize},
    {pdyolo::cli::qat_spec, pdyolo::cli::run_qat},
    {pdyolo::cli::forward_spec, pdyolo::cli::run_forward}, {pdyolo::cli::detect_spec, pdyolo::cli::run_detect},
    {pdyolo::cli::eval_spec, pdyolo::cli::run_eval},     {pdyolo::cli::train_spec, pdyolo::cli::run_train},
    {pdyolo::cli::bench_spec, pdyolo::cli::run_bench},   {demo_spec, run_demo},
};

int usage(std::ostream& os, int code) {
  os << "usage: pdyolo <command> [options]   (pdyolo <command> --help: that command's options)\n\ncommands:\n";
  for (const Command& c : kCommands) os << c.spec().usage();
  os << "  version  print the version and the kernels this CPU uses\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr, 2);
  const std::string command = argv[1];
  try {
    for (const Command& c : kCommands)
      if (command == c.spec().name) {
        for (int i = 2; i < argc; ++i)
          if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::cout << "usage: pdyolo " << command << " [options]\n" << c.spec().usage();
            return 0;
          }
        return c.run(Args(c.spec(), argc, argv));
      }
    if (command == "version") {
      std::cout << "pdyolo " << PDYOLO_VERSION << "\nthreads: " << pdyolo::num_threads()
                << "\ngemm micro-kernel: "
                << pdyolo::kernels::cpu::gemm_micro_kernel(pdyolo::kernels::cpu::gemm_isa()).name
                << "\nint8 conv kernel: " << pdyolo::kernels::cpu::qconv_isa_name(pdyolo::kernels::cpu::best_qconv_isa()) << "\n";
      return 0;
    }
    if (command == "-h" || command == "--help" || command == "help") return usage(std::cout, 0);
    std::cerr << "pdyolo: unknown command '" << command << "'\n";
    return usage(std::cerr, 2);
  } catch (const pdyolo::Error& e) {
    std::cerr << "pdyolo: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "pdyolo: error: out of memory (an input asked for more than this machine has)\n";
    return 1;
  } catch (const std::exception& e) {  // a bug: pdyolo's own checks throw pdyolo::Error
    std::cerr << "pdyolo: internal error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "pdyolo: internal error: an unknown exception\n";
    return 1;
  }
}
