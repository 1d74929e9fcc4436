// Prints to_string(code) of every ErrorCode, one a line, in declaration
// order: what check_problem_codes.py compares docs/openapi.yaml's Problem
// `code` enum against, so the spec is checked against the code itself rather
// than against a parse of the header.
#include <iostream>

#include "tessera/error.hpp"

int main() {
  for (tessera::ErrorCode code : tessera::kAllErrorCodes)
    std::cout << tessera::to_string(code) << '\n';
}
