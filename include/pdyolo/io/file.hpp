// Whole-file reads and atomic writes (write a temporary next to the target, then rename), so a
// crash or a full disk never leaves a half-written file under the real name.
#pragma once
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pdyolo/core/error.hpp"
#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <unistd.h>
#endif

namespace pdyolo::io {

inline std::vector<char> read_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  PDYOLO_CHECK(!ec && std::filesystem::exists(status), path, ": no such file");
  PDYOLO_CHECK(std::filesystem::is_regular_file(status), path, ": is ",
               std::filesystem::is_directory(status) ? "a directory" : "not a regular file", ", not a file that can be read");
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

// The first `count` bytes of a file (fewer when it is shorter).
inline std::vector<char> read_file_prefix(const std::string& path, uint64_t count) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  PDYOLO_CHECK(!ec && std::filesystem::exists(status), path, ": no such file");
  PDYOLO_CHECK(std::filesystem::is_regular_file(status), path, ": is ",
               std::filesystem::is_directory(status) ? "a directory" : "not a regular file", ", not a file that can be read");
  const uint64_t size = std::filesystem::file_size(path, ec);
  PDYOLO_CHECK(!ec, path, ": cannot determine the file size");
  std::ifstream in(path, std::ios::binary);
  PDYOLO_CHECK(in.good(), path, ": cannot open for reading");
  std::vector<char> bytes(static_cast<size_t>(std::min(size, count)));
  if (!bytes.empty()) in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  PDYOLO_CHECK(in.good(), path, ": read failed");
  return bytes;
}

namespace detail {
// Removes `path`.tmp.<pid> files left by writers that were killed (their process is gone).
inline void remove_orphaned_temporaries(const std::string& path) {
#if defined(__unix__) || defined(__APPLE__)
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
#else
  (void)path;
#endif
}
}  // namespace detail

// Calls write(stream) on a temporary file, then renames it over `path`. Temporaries that killed
// writers left next to `path` are removed first.
template <class WriteFn>
void write_file_atomic(const std::string& path, WriteFn write) {
  detail::remove_orphaned_temporaries(path);
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
