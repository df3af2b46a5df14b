// Value: the one tree type for structured data read from JSON, YAML and Python pickles
// (configs, safetensors headers, checkpoint contents). Each value remembers the line it came from
// (0 where the source has no lines) so errors can point at it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/core/tensor.hpp"

namespace pdyolo::io {

struct Value {
  enum class Kind { none, boolean, integer, real, string, list, dict, tensor, object, global };

  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string str;                                 // string (or bytes); class name of an object or global
  std::vector<Value> items;                        // list / tuple items; an object's constructor args
  std::vector<std::pair<std::string, Value>> dict; // dict entries in order; an object's state
  Tensor tensor;
  int line = 0;

  static Value make_none() { return Value(); }
  static Value make_bool(bool b) { Value v; v.kind = Kind::boolean; v.boolean = b; return v; }
  static Value make_int(int64_t i) { Value v; v.kind = Kind::integer; v.integer = i; return v; }
  static Value make_real(double d) { Value v; v.kind = Kind::real; v.real = d; return v; }
  static Value make_string(std::string s) { Value v; v.kind = Kind::string; v.str = std::move(s); return v; }
  static Value make_list(std::vector<Value> items = {}) { Value v; v.kind = Kind::list; v.items = std::move(items); return v; }
  static Value make_dict() { Value v; v.kind = Kind::dict; return v; }

  bool is(Kind k) const { return kind == k; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::real; }
  double as_double() const { return kind == Kind::integer ? static_cast<double>(integer) : real; }

  const Value* find(const std::string& key) const {
    for (const auto& [k, v] : dict)
      if (k == key) return &v;
    return nullptr;
  }
  void set(const std::string& key, Value v) {
    for (auto& [k, existing] : dict)
      if (k == key) {
        existing = std::move(v);
        return;
      }
    dict.emplace_back(key, std::move(v));
  }
};

inline const char* value_kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::none: return "null";
    case Value::Kind::boolean: return "a boolean";
    case Value::Kind::integer: return "an integer";
    case Value::Kind::real: return "a number";
    case Value::Kind::string: return "a string";
    case Value::Kind::list: return "a list";
    case Value::Kind::dict: return "a mapping";
    case Value::Kind::tensor: return "a tensor";
    case Value::Kind::object: return "an object";
    case Value::Kind::global: return "a Python class or function";
  }
  return "?";
}

}  // namespace pdyolo::io
