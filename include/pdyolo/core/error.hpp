// pdyolo::Error — the one exception type library code throws. Library code never aborts.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pdyolo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <class T, class... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: throw_error("conv2d: weight ", shape_str(w), ...).
template <class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream os;
  detail::append_all(os, parts...);
  throw Error(os.str());
}

// "[2, 3, 4]" — used in every shape error message.
inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

}  // namespace pdyolo

// Checks a condition and throws pdyolo::Error with the streamed message when it fails.
#define PDYOLO_CHECK(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) ::pdyolo::throw_error(__VA_ARGS__);             \
  } while (0)
