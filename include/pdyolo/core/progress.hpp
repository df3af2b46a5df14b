// A terminal progress bar for long loops:  label  45%|█████▌      | 58/128 [00:03<00:04, 16.2 it/s] extra
// Redrawn in place on a terminal (at most 10 times a second); in logs (not a terminal) one line
// every few seconds, so CI output stays short.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pdyolo {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled = true)
      : label_(std::move(label)), total_(total), enabled_(enabled), start_(Clock::now()), last_(start_) {
#if defined(__unix__) || defined(__APPLE__)
    tty_ = isatty(fileno(stderr)) != 0;
#endif
  }
  ~ProgressBar() { finish(); }

  void update(int64_t done, const std::string& extra = "") {
    done_ = done;
    extra_ = extra;
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!enabled_ || finished_ || (done < total_ && since < (tty_ ? 0.1 : 5.0))) return;
    last_ = now;
    draw(done >= total_);
    if (done >= total_) finished_ = true;
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    if (enabled_) draw(true);
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string clock_text(double s) {
    char buf[16];
    const int t = static_cast<int>(s + 0.5);
    std::snprintf(buf, sizeof buf, "%02d:%02d", t / 60, t % 60);
    return buf;
  }
  void draw(bool final_line) {
    const double secs = elapsed();
    const double rate = secs > 0 ? done_ / secs : 0.0;
    const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    const int width = 24, filled = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, ' ');
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    std::fprintf(stderr, "%s%s %3d%%|%s| %lld/%lld [%s<%s, %.1f it/s] %s%s", tty_ ? "\r" : "", label_.c_str(),
                 static_cast<int>(frac * 100), bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
                 clock_text(secs).c_str(), clock_text(eta).c_str(), rate, extra_.c_str(), (final_line || !tty_) ? "\n" : "");
    std::fflush(stderr);
  }

  std::string label_, extra_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_ = false, finished_ = false;
  Clock::time_point start_, last_;
};

}  // namespace pdyolo
