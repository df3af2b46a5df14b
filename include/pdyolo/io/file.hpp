// Whole-file reads and atomic writes (write a temporary next to the target, then rename), so a
// crash or a full disk never leaves a half-written file under the real name.
#pragma once
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "pdyolo/core/error.hpp"
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pdyolo::io {

inline std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  PDYOLO_CHECK(in.good(), path, ": cannot open for reading");
  const std::streamsize size = in.tellg();
  PDYOLO_CHECK(size >= 0, path, ": cannot determine the file size");
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0) in.read(bytes.data(), size);
  PDYOLO_CHECK(in.good(), path, ": read failed");
  return bytes;
}

// Calls write(stream) on a temporary file, then renames it over `path`.
template <class WriteFn>
void write_file_atomic(const std::string& path, WriteFn write) {
#if defined(__unix__) || defined(__APPLE__)
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
#else
  const std::string tmp = path + ".tmp";
#endif
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PDYOLO_CHECK(out.good(), path, ": cannot open temporary file ", tmp, " for writing");
    write(out);
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(tmp.c_str());
      throw_error(path, ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_error(path, ": cannot rename temporary file into place");
  }
}

}  // namespace pdyolo::io
