// Wall time per op, summed while an OpProfile is active on this thread: graph::Graph::forward
// times each node by its op, and backward() each node's gradient function by the op that recorded
// it (plus the summing of gradients that meet at one tensor). Nothing is timed while no profile is
// active, so the hooks cost one thread-local load. bench_train_step --profile prints one.
#pragma once
#include <chrono>
#include <map>
#include <string>

namespace pdyolo {

class OpProfile {
 public:
  struct Entry {
    double seconds = 0;
    int64_t calls = 0;
  };

  // Makes this profile the one the hooks add to, on this thread, until it is destroyed.
  OpProfile() : previous_(active_slot()) { active_slot() = this; }
  ~OpProfile() { active_slot() = previous_; }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  static OpProfile* active() { return active_slot(); }
  void add(const std::string& key, double seconds) {
    Entry& e = entries_[key];
    e.seconds += seconds;
    e.calls += 1;
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  static OpProfile*& active_slot() {
    thread_local OpProfile* profile = nullptr;
    return profile;
  }
  std::map<std::string, Entry> entries_;
  OpProfile* previous_;
};

// Adds the time from its construction to its destruction to the active profile, if any, under
// "<phase> <op>" (e.g. "backward conv2d").
class OpTimer {
 public:
  OpTimer(const char* phase, const std::string& op) : profile_(OpProfile::active()) {
    if (!profile_) return;
    key_ = std::string(phase) + " " + op;
    start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (profile_) profile_->add(key_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* profile_;
  std::string key_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pdyolo
