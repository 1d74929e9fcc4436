#include "cli/commands.hpp"
#include "cli/serve.hpp"

int main(int argc, char** argv) {
  return tessera::cli::run(argc, argv, &tessera::cli::serve);
}
