// The one profiler: wall time summed while an OpProfile is active on this thread, by op and by step,
// on one clock (steady_clock), taken by OpTimer. Every executor times each step it runs — graph::forward
// and graph::Executor by node ("forward <op>"), the int8 executor ("int8 <op>") — and backward()
// each node's gradient function by the op that recorded it (plus the summing of gradients that meet
// at one tensor). Steps are also kept one by one, with their GFLOP, in the order first run (what
// `pdyolo bench --profile` prints per layer). Nothing is timed while no profile is active, so the
// hooks cost one thread-local load.
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace pdyolo {

class OpProfile {
 public:
  struct Entry {
    double seconds = 0;
    int64_t calls = 0;
  };
  // One step of an executor (a graph node, e.g. "model.3.conv"), over every run it was timed in.
  struct Step {
    std::string name, op;
    double gflop = 0;  // per image (Graph::node_flops), 0 where the executor does not count it
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
  void add_step(const std::string& name, const std::string& op, double gflop, double seconds) {
    auto [it, added] = step_index_.try_emplace(name, steps_.size());
    if (added) steps_.push_back({name, op, gflop, 0.0, 0});
    Step& s = steps_[it->second];
    s.seconds += seconds;
    s.calls += 1;
  }
  // Time by "<phase> <op>" (e.g. "backward conv2d").
  const std::map<std::string, Entry>& entries() const { return entries_; }
  // Time by step, in the order first run.
  const std::vector<Step>& steps() const { return steps_; }

 private:
  static OpProfile*& active_slot() {
    thread_local OpProfile* profile = nullptr;
    return profile;
  }
  std::map<std::string, Entry> entries_;
  std::vector<Step> steps_;
  std::map<std::string, size_t> step_index_;
  OpProfile* previous_;
};

// Adds the time from its construction to its destruction to the active profile, if any, under
// "<phase> <op>" (e.g. "backward conv2d") and, when given a step's name, to that step too.
class OpTimer {
 public:
  OpTimer(const char* phase, const std::string& op) : profile_(OpProfile::active()) {
    if (!profile_) return;
    key_ = std::string(phase) + " " + op;
    start_ = std::chrono::steady_clock::now();
  }
  OpTimer(const char* phase, const std::string& op, const std::string& step, double gflop) : OpTimer(phase, op) {
    if (!profile_) return;
    op_ = op, step_ = step, gflop_ = gflop;
  }
  ~OpTimer() {
    if (!profile_) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    profile_->add(key_, seconds);
    if (!step_.empty()) profile_->add_step(step_, op_, gflop_, seconds);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* profile_;
  std::string key_, op_, step_;
  double gflop_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pdyolo
