// PyTorch checkpoint files (.pt, the ZIP format of torch.save since 1.6), read natively: the
// pickled object tree is unpickled, every module's _parameters and _buffers are collected under
// their state_dict names, and — for the official YOLOv7 releases, which pickle the whole model —
// the model's embedded config dict (model.yaml) and class names are returned too.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "pdyolo/io/pickle.hpp"
#include "pdyolo/io/zip.hpp"

namespace pdyolo::io {

struct PtCheckpoint {
  std::map<std::string, Tensor> state_dict;  // as torch's state_dict(): "model.0.conv.weight", …
  std::optional<Value> config;               // the model's YAML dict, when the model object was pickled
  std::vector<std::string> names;            // class names, when present
  bool whole_model = false;                  // a pickled module tree (vs a plain state dict)
};

namespace detail {

inline DType storage_dtype(const std::string& cls, const std::string& path, bool& from_double, bool& from_bf16) {
  from_double = from_bf16 = false;
  if (cls == "torch.HalfStorage") return DType::f16;
  if (cls == "torch.FloatStorage") return DType::f32;
  if (cls == "torch.LongStorage") return DType::i64;
  if (cls == "torch.IntStorage") return DType::i32;
  if (cls == "torch.ByteStorage" || cls == "torch.BoolStorage") return DType::u8;
  if (cls == "torch.CharStorage") return DType::i8;
  if (cls == "torch.DoubleStorage") {
    from_double = true;
    return DType::f32;
  }
  if (cls == "torch.BFloat16Storage") {
    from_bf16 = true;
    return DType::f32;
  }
  throw_error(path, ": unsupported storage type ", cls);
}

// torch's state_dict() naming over a pickled module tree.
inline void collect_module_tensors(const Value& module, const std::string& prefix, std::map<std::string, Tensor>& out) {
  for (const char* field : {"_parameters", "_buffers"}) {
    const Value* tensors = module.find(field);
    if (!tensors) continue;
    for (const auto& [name, t] : tensors->dict)
      if (t.is(Value::Kind::tensor)) out[prefix + name] = t.tensor;
  }
  if (const Value* children = module.find("_modules"))
    for (const auto& [name, child] : children->dict)
      if (child.is(Value::Kind::object)) collect_module_tensors(child, prefix + name + ".", out);
}

}  // namespace detail

inline Value unpickle_pt(const ZipArchive& zip) {
  std::string prefix;
  for (const std::string& name : zip.names()) {
    const size_t at = name.rfind("data.pkl");
    if (at != std::string::npos && at + 8 == name.size() && (at == 0 || name[at - 1] == '/')) {
      prefix = name.substr(0, at);
      break;
    }
  }
  PDYOLO_CHECK(zip.contains(prefix + "data.pkl"), zip.path(),
               ": no data.pkl in the archive (not a PyTorch checkpoint, or the pre-1.6 legacy format)");
  const auto [data, size] = zip.entry(prefix + "data.pkl");
  auto load_storage = [&zip, prefix = prefix](const std::string& cls, const std::string& key, int64_t numel) {
    bool from_double = false, from_bf16 = false;
    const DType dt = detail::storage_dtype(cls, zip.path(), from_double, from_bf16);
    const size_t element = from_double ? 8 : from_bf16 ? 2 : dtype_size(dt);
    const auto [bytes, nbytes] = zip.entry(prefix + "data/" + key);
    PDYOLO_CHECK(numel >= 0 && static_cast<uint64_t>(numel) <= nbytes / element, zip.path(), ": storage '", key, "' holds ", nbytes,
                 " bytes, fewer than ", numel, " elements of ", cls, " need");  // compared by division: no overflow
    Tensor t = Tensor::empty({numel}, dt);
    if (from_double) {
      float* out = t.data<float>();
      for (int64_t i = 0; i < numel; ++i) {
        double d;
        std::memcpy(&d, bytes + i * 8, 8);
        out[i] = static_cast<float>(d);
      }
    } else if (from_bf16) {
      float* out = t.data<float>();
      for (int64_t i = 0; i < numel; ++i) {
        uint32_t bits = 0;
        std::memcpy(reinterpret_cast<char*>(&bits) + 2, bytes + i * 2, 2);
        std::memcpy(&out[i], &bits, 4);
      }
    } else if (numel > 0) {
      std::memcpy(t.raw_data(), bytes, static_cast<size_t>(numel) * element);
    }
    return t;
  };
  return Unpickler(data, size, zip.path() + ":" + prefix + "data.pkl", load_storage).load();
}

// A PyTorch checkpoint (ZIP + pickle) → its tensors, and the config and names a pickled model carries.
inline PtCheckpoint parse_pt(const ZipArchive& zip) {
  const std::string& path = zip.path();
  const Value root = unpickle_pt(zip);
  PtCheckpoint ckpt;
  auto from_module = [&](const Value& model) {
    ckpt.whole_model = true;
    detail::collect_module_tensors(model, "", ckpt.state_dict);
    if (const Value* yaml = model.find("yaml"); yaml && yaml->is(Value::Kind::dict)) ckpt.config = *yaml;
    if (const Value* names = model.find("names"); names && names->is(Value::Kind::list))
      for (const Value& n : names->items) ckpt.names.push_back(n.str);
  };
  auto from_tensors = [&](const Value& dict) {
    for (const auto& [name, t] : dict.dict)
      if (t.is(Value::Kind::tensor)) ckpt.state_dict[name] = t.tensor;
  };
  if (root.is(Value::Kind::object)) {
    from_module(root);
  } else if (root.is(Value::Kind::dict)) {
    const Value* model = root.find("model");
    if (!model || model->is(Value::Kind::none)) model = root.find("ema");
    if (model && model->is(Value::Kind::object)) from_module(*model);
    else if (model && model->is(Value::Kind::dict)) from_tensors(*model);
    else if (root.find("state_dict") && root.find("state_dict")->is(Value::Kind::dict)) from_tensors(*root.find("state_dict"));
    else from_tensors(root);
  }
  PDYOLO_CHECK(!ckpt.state_dict.empty(), path, ": found no tensors (expected a pickled model or a state dict)");
  return ckpt;
}

inline PtCheckpoint load_pt(const std::string& path) { return parse_pt(ZipArchive(path)); }

}  // namespace pdyolo::io
