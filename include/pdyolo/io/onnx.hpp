// ONNX model files, written with the protobuf writer (io/protobuf.hpp): the messages of
// onnx/onnx.proto that a model needs, by their field numbers —
//   ModelProto          ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8,
//                       metadata_props 14
//   OperatorSetIdProto  domain 1, version 2
//   GraphProto          node 1, name 2, initializer 5, input 11, output 12
//   NodeProto           input 1, output 2, name 3, op_type 4, attribute 5
//   AttributeProto      name 1, f 2, i 3, s 4, ints 8, type 20 (FLOAT 1, INT 2,
//                       STRING 3, INTS 7)
//   TensorProto         dims 1, data_type 2, name 8, raw_data 9 (little-endian)
//   ValueInfoProto      name 1, type 2 → TypeProto tensor_type 1 → elem_type 1, shape 2 →
//                       TensorShapeProto dim 1 → dim_value 1 | dim_param 2
//   StringStringEntryProto  key 1, value 2
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/core/error.hpp"
#include "pdyolo/io/protobuf.hpp"

namespace pdyolo::io::onnx {

using protobuf::Message;

// TensorProto.DataType.
enum class DataType : int32_t { float32 = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, float16 = 10 };

inline size_t element_bytes(DataType t) {
  switch (t) {
    case DataType::uint8:
    case DataType::int8: return 1;
    case DataType::float16: return 2;
    case DataType::float32:
    case DataType::int32: return 4;
    case DataType::int64: return 8;
  }
  return 0;
}

// A tensor with its data as raw little-endian bytes.
inline Message tensor(const std::string& name, DataType type, const std::vector<int64_t>& dims, const void* data) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  Message t;
  for (int64_t d : dims) t.add_int(1, d);
  t.add_int(2, static_cast<int64_t>(type));
  t.add_string(8, name);
  t.add_bytes(9, data, static_cast<size_t>(count) * element_bytes(type));
  return t;
}

// A node's attribute.
struct Attribute {
  Message message;
  static Attribute of_int(const std::string& name, int64_t v) { return make(name, 2).add_int(3, v); }
  static Attribute of_float(const std::string& name, float v) { return make(name, 1).add_float(2, v); }
  static Attribute of_string(const std::string& name, const std::string& v) { return make(name, 3).add_string(4, v); }
  static Attribute of_ints(const std::string& name, const std::vector<int64_t>& v) {
    Attribute a = make(name, 7);
    for (int64_t x : v) a.add_int(8, x);
    return a;
  }

 private:
  static Attribute make(const std::string& name, int64_t type) {
    Attribute a;
    a.message.add_string(1, name).add_int(20, type);
    return a;
  }
  Attribute& add_int(int field, int64_t v) { return message.add_int(field, v), *this; }
  Attribute& add_float(int field, float v) { return message.add_float(field, v), *this; }
  Attribute& add_string(int field, const std::string& v) { return message.add_string(field, v), *this; }
};

// One dimension of a graph input or output: a size, or a name for a size chosen at run time.
struct Dim {
  int64_t value = 0;
  std::string param;  // non-empty: symbolic (e.g. "batch")
};

inline Message value_info(const std::string& name, DataType type, const std::vector<Dim>& dims) {
  Message shape;
  for (const Dim& d : dims) {
    Message dim;
    if (d.param.empty()) dim.add_int(1, d.value);
    else dim.add_string(2, d.param);
    shape.add_message(1, dim);
  }
  Message tensor_type;
  tensor_type.add_int(1, static_cast<int64_t>(type)).add_message(2, shape);
  Message type_proto;
  type_proto.add_message(1, tensor_type);
  Message info;
  info.add_string(1, name).add_message(2, type_proto);
  return info;
}

// A graph being written: nodes in order, initializers, inputs and outputs; then the model's bytes.
class GraphWriter {
 public:
  void add_node(const std::string& op_type, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                const std::string& name, const std::vector<Attribute>& attributes = {}) {
    Message node;
    for (const std::string& in : inputs) node.add_string(1, in);
    for (const std::string& out : outputs) node.add_string(2, out);
    node.add_string(3, name).add_string(4, op_type);
    for (const Attribute& a : attributes) node.add_message(5, a.message);
    nodes_.push_back(std::move(node));
  }
  void add_initializer(const Message& tensor) { initializers_.push_back(tensor); }
  void add_input(const Message& info) { inputs_.push_back(info); }
  void add_output(const Message& info) { outputs_.push_back(info); }

  // The ModelProto: IR version 7 (what opsets 12–14 need), the default domain at `opset`.
  std::string model_bytes(const std::string& graph_name, int64_t opset, const std::string& producer, const std::string& version,
                          const std::vector<std::pair<std::string, std::string>>& metadata) const {
    PDYOLO_CHECK(opset >= 12 && opset <= 14, "onnx: opset ", opset, " is not written here (12 to 14, IR version 7)");
    Message graph;
    for (const Message& n : nodes_) graph.add_message(1, n);
    graph.add_string(2, graph_name);
    for (const Message& t : initializers_) graph.add_message(5, t);
    for (const Message& i : inputs_) graph.add_message(11, i);
    for (const Message& o : outputs_) graph.add_message(12, o);
    Message opset_id;
    opset_id.add_string(1, "").add_int(2, opset);
    Message model;
    model.add_int(1, 7).add_string(2, producer).add_string(3, version).add_message(7, graph).add_message(8, opset_id);
    for (const auto& [key, value] : metadata) {
      Message entry;
      entry.add_string(1, key).add_string(2, value);
      model.add_message(14, entry);
    }
    return model.bytes();
  }

 private:
  std::vector<Message> nodes_, initializers_, inputs_, outputs_;
};

}  // namespace pdyolo::io::onnx
