// A small JSON reader (into io::Value) and string escaper — enough for safetensors headers and
// metadata files.
// Errors name the source and the byte offset.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pdyolo/core/error.hpp"
#include "pdyolo/io/value.hpp"

namespace pdyolo::io {

class JsonParser {
 public:
  JsonParser(const std::string& text, std::string source) : s_(text), source_(std::move(source)) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw_error(source_, ": invalid JSON at byte ", pos_, ": ", what);
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }
  bool consume_word(const char* w) {
    const std::string word(w);
    if (s_.compare(pos_, word.size(), word) == 0) {
      pos_ += word.size();
      return true;
    }
    return false;
  }

  Value parse_value(int depth) {
    if (depth > 64) fail("nesting deeper than 64 levels");
    skip_space();
    if (pos_ >= s_.size()) fail("unexpected end of input");
    Value v;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.kind = Value::Kind::dict;
      if (consume('}')) return v;
      do {
        skip_space();
        std::string key = parse_string();
        expect(':');
        v.dict.emplace_back(std::move(key), parse_value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++pos_;
      v.kind = Value::Kind::list;
      if (consume(']')) return v;
      do v.items.push_back(parse_value(depth + 1));
      while (consume(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Value::Kind::string;
      v.str = parse_string();
    } else if (consume_word("true")) {
      v.kind = Value::Kind::boolean;
      v.boolean = true;
    } else if (consume_word("false")) {
      v.kind = Value::Kind::boolean;
    } else if (consume_word("null")) {
      v.kind = Value::Kind::none;
    } else {
      parse_number(v);
    }
    return v;
  }

  void parse_number(Value& v) {
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    bool integer = true;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c >= '0' && c <= '9') {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && pos_ > start)) {
        integer = false;
        ++pos_;
      } else {
        break;
      }
    }
    const std::string text = s_.substr(start, pos_ - start);
    if (text.empty() || text == "-") fail("expected a value");
    try {
      if (integer) {
        v.kind = Value::Kind::integer;
        v.integer = std::stoll(text);
      } else {
        v.kind = Value::Kind::real;
        v.real = std::stod(text);
      }
    } catch (const std::exception&) {
      fail("malformed number '" + text + "'");
    }
  }

  std::string parse_string() {
    if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(parse_code_point(), out); break;
        default: fail(std::string("unknown escape \\") + e);
      }
    }
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }
  uint32_t parse_code_point() {
    uint32_t cp = parse_hex4();
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
      if (!consume_word("\\u")) fail("unpaired surrogate");
      const uint32_t low = parse_hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    return cp;
  }
  static void append_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  const std::string& s_;
  std::string source_;
  size_t pos_ = 0;
};

inline Value parse_json(const std::string& text, const std::string& source) {
  return JsonParser(text, source).parse_document();
}

// "text" with JSON escapes.
inline std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace pdyolo::io

namespace pdyolo::io {

// Serialises a Value (without tensors or objects) as compact JSON.
inline std::string to_json(const Value& v) {
  switch (v.kind) {
    case Value::Kind::none: return "null";
    case Value::Kind::boolean: return v.boolean ? "true" : "false";
    case Value::Kind::integer: return std::to_string(v.integer);
    case Value::Kind::real: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v.real);
      std::string s = buf;
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a real on the way back
      return s;
    }
    case Value::Kind::string: return json_quote(v.str);
    case Value::Kind::list: {
      std::string s = "[";
      for (size_t i = 0; i < v.items.size(); ++i) s += (i ? "," : "") + to_json(v.items[i]);
      return s + "]";
    }
    case Value::Kind::dict: {
      std::string s = "{";
      for (size_t i = 0; i < v.dict.size(); ++i) s += (i ? "," : "") + json_quote(v.dict[i].first) + ":" + to_json(v.dict[i].second);
      return s + "}";
    }
    default: throw_error("to_json: cannot write ", value_kind_name(v.kind));
  }
}

}  // namespace pdyolo::io
