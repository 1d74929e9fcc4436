// Early return of a failure, for functions that return Status or Result<T>.
//
//   TESSERA_TRY(c.simple("BEGIN"));       // a Status
//   TESSERA_TRY(stmt.run());              // a Result<T> whose value is not needed
//
// If `expr` (a Status or any Result<T>) holds an error, the enclosing
// function returns that error as std::unexpected; otherwise execution goes
// on and the value, if any, is dropped. Use it where a call's only interest
// is whether it failed: statement execution, transactions, migrations.
// When the value is needed, write the test out
// (`auto r = f(); if (!r) return std::unexpected(r.error());`): the name of
// the result stays visible, and nothing is hidden in a macro.
//
// A plain `if` with an initialiser, so it is standard C++ (no statement
// expressions) and evaluates `expr` exactly once. Private to the library
// sources; not part of the public headers.
#pragma once

#include <expected>
#include <utility>

#define TESSERA_TRY(expr)                                             \
  do {                                                                \
    if (auto tessera_try_result_ = (expr); !tessera_try_result_)      \
      return std::unexpected(std::move(tessera_try_result_).error()); \
  } while (0)
