// An unpickler for PyTorch checkpoints: the pickle virtual machine (protocols 2–4, the opcodes
// torch.save emits) producing io::Value trees. Tensors come back as pdyolo Tensors whose storages
// are read from the checkpoint's ZIP archive through persistent ids. Objects of classes we do not
// know (modules, numpy scalars, …) are kept as generic objects: class name, constructor arguments
// and state. Anything the machine does not understand is an error naming the file, the byte
// offset and the opcode — never a crash.
#pragma once
#include <cstring>
#include <functional>
#include <memory>
#include <unordered_map>

#include "pdyolo/io/value.hpp"

namespace pdyolo::io {

// Loads the storage a persistent id names: (storage class, key, element count) → 1-D tensor.
using StorageLoader = std::function<Tensor(const std::string& storage_class, const std::string& key, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, std::string source, StorageLoader loader)
      : p_(data), size_(size), source_(std::move(source)), load_storage_(std::move(loader)) {}

  Value load() {
    while (true) {
      PDYOLO_CHECK(pos_ < size_, source_, ": pickle ends without STOP (truncated?)");
      op_at_ = pos_;
      const uint8_t op = byte();
      if (op == '.') break;  // STOP
      step(op);
    }
    PDYOLO_CHECK(!stack_.empty(), source_, ": pickle left an empty stack");
    return *stack_.back();
  }

 private:
  using Ref = std::shared_ptr<Value>;

  [[noreturn]] void fail(const std::string& what) const {
    throw_error(source_, ": pickle byte ", op_at_, ": ", what);
  }
  uint8_t byte() {
    if (pos_ >= size_) fail("unexpected end of data");
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t uint_le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(byte()) << (8 * i);
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > size_ - pos_) fail("string runs past the end of the data");
    std::string s(p_ + pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    std::string s;
    for (char c = static_cast<char>(byte()); c != '\n'; c = static_cast<char>(byte())) s += c;
    return s;
  }

  void push(Value v) { stack_.push_back(std::make_shared<Value>(std::move(v))); }
  Ref pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<int64_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  static std::string key_of(const Value& k) {
    switch (k.kind) {
      case Value::Kind::string: return k.str;
      case Value::Kind::integer: return std::to_string(k.integer);
      default: return std::string("<") + value_kind_name(k.kind) + ">";
    }
  }
  Value tuple(std::vector<Ref> refs) {
    Value t = Value::make_list();
    for (auto& r : refs) t.items.push_back(checked(*r));
    return t;
  }

  // Containers nest values by copy: a crafted pickle could nest lists 100 000 deep (a deep, slow
  // copy and a stack overflow) or double a value through its memo at every step. Every value is
  // measured before it goes into a container — iteratively, stopping at the limits — and refused
  // past kMaxDepth levels or kMaxValues values.
  static constexpr int kMaxDepth = 200;
  static constexpr size_t kMaxValues = size_t{1} << 24;
  const Value& checked(const Value& v) const {
    std::vector<std::pair<const Value*, int>> todo{{&v, 1}};
    size_t count = 0;
    while (!todo.empty()) {
      const auto [value, depth] = todo.back();
      todo.pop_back();
      if (depth > kMaxDepth) fail("values nest deeper than " + std::to_string(kMaxDepth) + " levels");
      if (++count > kMaxValues) fail("the pickle expands to more than " + std::to_string(kMaxValues) + " values");
      for (const Value& item : value->items) todo.push_back({&item, depth + 1});
      for (const auto& entry : value->dict) todo.push_back({&entry.second, depth + 1});
    }
    return v;
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: byte(); break;                      // PROTO
      case 0x95: uint_le(8); break;                  // FRAME (protocol 4)
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case 'N': push(Value()); break;                // NONE
      case 0x88: push(Value::make_bool(true)); break;   // NEWTRUE
      case 0x89: push(Value::make_bool(false)); break;  // NEWFALSE
      case 'K': push(Value::make_int(static_cast<int64_t>(uint_le(1)))); break;  // BININT1
      case 'M': push(Value::make_int(static_cast<int64_t>(uint_le(2)))); break;  // BININT2
      case 'J': push(Value::make_int(static_cast<int32_t>(uint_le(4)))); break;  // BININT
      case 0x8a: {                                   // LONG1
        const uint64_t n = byte();
        if (n > 8) fail("LONG1 integer wider than 64 bits");
        uint64_t v = n ? uint_le(static_cast<int>(n)) : 0;
        if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(Value::make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {                                    // BINFLOAT (big-endian double)
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
        double d;
        std::memcpy(&d, &bits, 8);
        push(Value::make_real(d));
        break;
      }
      case 'X': push(Value::make_string(bytes(uint_le(4)))); break;     // BINUNICODE
      case 0x8c: push(Value::make_string(bytes(uint_le(1)))); break;    // SHORT_BINUNICODE
      case 'T': push(Value::make_string(bytes(uint_le(4)))); break;     // BINSTRING
      case 'U': push(Value::make_string(bytes(uint_le(1)))); break;     // SHORT_BINSTRING
      case 'B': push(Value::make_string(bytes(uint_le(4)))); break;     // BINBYTES
      case 'C': push(Value::make_string(bytes(uint_le(1)))); break;     // SHORT_BINBYTES
      case ')': push(Value::make_list()); break;                        // EMPTY_TUPLE
      case ']': push(Value::make_list()); break;                        // EMPTY_LIST
      case '}': push(Value::make_dict()); break;                        // EMPTY_DICT
      case 't': push(tuple(pop_to_mark())); break;                      // TUPLE
      case 0x85: { Ref a = pop(); push(tuple({a})); break; }            // TUPLE1
      case 0x86: { Ref b = pop(), a = pop(); push(tuple({a, b})); break; }           // TUPLE2
      case 0x87: { Ref c = pop(), b = pop(), a = pop(); push(tuple({a, b, c})); break; }  // TUPLE3
      case 'a': { Ref item = pop(); append(top(), *item); break; }     // APPEND
      case 'e': {                                                       // APPENDS
        std::vector<Ref> items = pop_to_mark();
        for (auto& item : items) append(top(), *item);
        break;
      }
      case 's': { Ref value = pop(), key = pop(); set_item(top(), *key, *value); break; }  // SETITEM
      case 'u': {                                                       // SETITEMS
        std::vector<Ref> items = pop_to_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        for (size_t i = 0; i < items.size(); i += 2) set_item(top(), *items[i], *items[i + 1]);
        break;
      }
      case 'q': memo_[static_cast<uint32_t>(uint_le(1))] = top(); break;  // BINPUT
      case 'r': memo_[static_cast<uint32_t>(uint_le(4))] = top(); break;  // LONG_BINPUT
      case 0x94: memo_[static_cast<uint32_t>(memo_.size())] = top(); break;  // MEMOIZE
      case 'h': get(static_cast<uint32_t>(uint_le(1))); break;          // BINGET
      case 'j': get(static_cast<uint32_t>(uint_le(4))); break;          // LONG_BINGET
      case '0': pop(); break;                                           // POP
      case '1': pop_to_mark(); break;                                   // POP_MARK
      case 'c': {                                                       // GLOBAL
        const std::string module = line(), name = line();
        Value g;
        g.kind = Value::Kind::global;
        g.str = module + "." + name;
        push(g);
        break;
      }
      case 0x93: {                                                      // STACK_GLOBAL
        Ref name = pop(), module = pop();
        Value g;
        g.kind = Value::Kind::global;
        g.str = module->str + "." + name->str;
        push(g);
        break;
      }
      case 'R': { Ref args = pop(), callable = pop(); push(call(*callable, *args)); break; }  // REDUCE
      case 0x81: { Ref args = pop(), cls = pop(); push(call(*cls, *args)); break; }           // NEWOBJ
      case 'b': { Ref state = pop(); build(top(), *state); break; }     // BUILD
      case 'Q': { Ref pid = pop(); push(persistent_load(*pid)); break; }  // BINPERSID
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex +
             (op >= 32 && op < 127 ? std::string(" ('") + static_cast<char>(op) + "')" : std::string()));
      }
    }
  }

  void get(uint32_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    stack_.push_back(it->second);
  }
  void append(Ref& list, const Value& item) {
    if (!list->is(Value::Kind::list)) fail(std::string("APPEND to ") + value_kind_name(list->kind));
    list->items.push_back(checked(item));
  }
  void set_item(Ref& dict, const Value& key, const Value& value) {
    if (dict->is(Value::Kind::object)) {  // e.g. an OrderedDict subclass kept as an object
      dict->set(key_of(key), checked(value));
      return;
    }
    if (!dict->is(Value::Kind::dict)) fail(std::string("SETITEM on ") + value_kind_name(dict->kind));
    dict->set(key_of(key), checked(value));
  }

  // REDUCE / NEWOBJ: the few callables whose results we need, else a generic object.
  Value call(const Value& callable, const Value& args) {
    if (!callable.is(Value::Kind::global)) fail(std::string("call of ") + value_kind_name(callable.kind));
    if (!args.is(Value::Kind::list)) fail("call arguments are not a tuple");
    const std::string& name = callable.str;
    const auto& a = args.items;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || !a[0].is(Value::Kind::tensor)) fail(name + " with unexpected arguments");
      return rebuild_tensor(a[0].tensor, a[1], a[2], a[3]);
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (a.empty() || !a[0].is(Value::Kind::tensor)) fail(name + " without a tensor");
      return a[0];
    }
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
      Value d = Value::make_dict();
      if (!a.empty() && a[0].is(Value::Kind::list))
        for (const Value& pair : a[0].items)
          if (pair.is(Value::Kind::list) && pair.items.size() == 2) d.set(key_of(pair.items[0]), pair.items[1]);
      return d;
    }
    if (name == "__builtin__.set" || name == "builtins.set") return a.empty() ? Value::make_list() : a[0];
    Value obj;
    obj.kind = Value::Kind::object;
    obj.str = name;
    obj.items = a;
    return obj;
  }

  void build(Ref& target, const Value& unchecked_state) {
    const Value& state = checked(unchecked_state);
    if (target->is(Value::Kind::object)) {
      // state may be a dict, or (dict, slot-state) as Python's default __reduce_ex__ produces
      const Value& dict = state.is(Value::Kind::list) && !state.items.empty() ? state.items[0] : state;
      if (dict.is(Value::Kind::dict))
        for (const auto& [k, v] : dict.dict) target->set(k, v);
      return;
    }
    if (target->is(Value::Kind::dict) && state.is(Value::Kind::dict)) {
      for (const auto& [k, v] : state.dict) target->set(k, v);
      return;
    }
    if (target->is(Value::Kind::tensor)) return;  // e.g. parameter state (requires_grad hooks): nothing to keep
    fail(std::string("BUILD on ") + value_kind_name(target->kind));
  }

  // ('storage', storage class, key, location, numel) → a 1-D tensor holding the storage.
  Value persistent_load(const Value& pid) {
    if (!pid.is(Value::Kind::list) || pid.items.size() < 5 || pid.items[0].str != "storage" ||
        !pid.items[1].is(Value::Kind::global) || !pid.items[4].is(Value::Kind::integer))
      fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
    const std::string& key = pid.items[2].str;
    auto it = storages_.find(key);
    if (it == storages_.end()) it = storages_.emplace(key, load_storage_(pid.items[1].str, key, pid.items[4].integer)).first;
    Value v;
    v.kind = Value::Kind::tensor;
    v.tensor = it->second;
    return v;
  }

  Value rebuild_tensor(const Tensor& storage, const Value& offset, const Value& size, const Value& stride) {
    if (!offset.is(Value::Kind::integer) || !size.is(Value::Kind::list) || !stride.is(Value::Kind::list) ||
        size.items.size() != stride.items.size())
      fail("tensor with malformed size/stride");
    // Sizes, strides and offset are checked so that no product or sum can overflow: each is
    // non-negative and at most the storage's element count, and the last element is found by
    // adding one dimension's reach at a time, each bounded before it is added.
    const int64_t limit = storage.numel();
    if (offset.integer < 0 || offset.integer > limit) fail("tensor offset " + std::to_string(offset.integer) + " lies outside its storage");
    Shape shape, strides;
    for (size_t i = 0; i < size.items.size(); ++i) {
      if (!size.items[i].is(Value::Kind::integer) || !stride.items[i].is(Value::Kind::integer))
        fail("tensor with a size or stride that is not an integer");
      shape.push_back(size.items[i].integer);
      strides.push_back(stride.items[i].integer);
      if (shape.back() < 0 || strides.back() < 0) fail("tensor with a negative size or stride");
    }
    if (shape.size() > static_cast<size_t>(kMaxDims)) fail("tensor with more than 6 dimensions");
    if (checked_numel(shape, source_ + ": tensor size") > 0) {
      int64_t last = offset.integer;  // the last element's index, ≤ limit at every step
      for (size_t i = 0; i < shape.size(); ++i) {
        const int64_t steps = shape[i] - 1;
        if (strides[i] > 0 && steps > (limit - last) / strides[i]) fail("tensor reaches past the end of its storage");
        last += steps * strides[i];
      }
      if (last >= limit) fail("tensor reaches past the end of its storage");
    }
    auto impl = std::make_shared<TensorImpl>(*storage.impl());
    impl->shape = shape;
    impl->strides = strides;
    impl->offset = offset.integer;
    impl->grad_fn.reset();
    Value v;
    v.kind = Value::Kind::tensor;
    v.tensor = contiguous_copy(Tensor(impl));  // own, dense copy: storages may be shared by views
    return v;
  }

  const char* p_;
  size_t size_;
  size_t pos_ = 0, op_at_ = 0;
  std::string source_;
  StorageLoader load_storage_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Ref> memo_;
  std::unordered_map<std::string, Tensor> storages_;
};

}  // namespace pdyolo::io
