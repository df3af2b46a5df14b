// Where a tensor's storage lives.
#pragma once
#include <string>

namespace pdyolo {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const {
    return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index);
  }
};

inline Device cpu_device() { return Device{}; }
inline Device cuda_device(int index = 0) { return Device{DeviceType::cuda, index}; }

}  // namespace pdyolo
