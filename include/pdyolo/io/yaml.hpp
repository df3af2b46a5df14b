// A reader for the YAML subset that YOLOv7's configuration files use: block mappings and
// sequences by indentation, flow collections ([...], {...}) that may span lines, quoted and plain
// scalars, and # comments. Plain scalars become integers, reals, booleans (true/false), null
// (null, ~) or strings — like PyYAML's safe_load, so `None` stays the string "None" and
// `nn.LeakyReLU(0.1)` the string it is. Errors name the source and the line.
#pragma once
#include <cctype>
#include <string>
#include <vector>

#include "pdyolo/io/file.hpp"
#include "pdyolo/io/value.hpp"

namespace pdyolo::io {

namespace detail {

struct YamlLine {
  int number;          // 1-based line in the source
  int indent;          // leading spaces
  std::string text;    // without indentation, comment and trailing spaces
};

// Removes a # comment that is not inside quotes and starts a word.
inline std::string strip_yaml_comment(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
      return line.substr(0, i);
    }
  }
  return line;
}

class YamlParser {
 public:
  YamlParser(const std::string& text, std::string source) : source_(std::move(source)) {
    int number = 0;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      ++number;
      std::string line = strip_yaml_comment(text.substr(start, end - start));
      while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.pop_back();
      size_t indent = 0;
      while (indent < line.size() && line[indent] == ' ') ++indent;
      if (indent < line.size() && line[indent] == '\t') fail(number, "tab used for indentation");
      if (indent < line.size() && line.substr(indent) != "---")
        lines_.push_back({number, static_cast<int>(indent), line.substr(indent)});
      start = end + 1;
    }
  }

  Value parse_document() {
    if (lines_.empty()) return Value::make_dict();
    Value v = parse_block(lines_[0].indent);
    if (pos_ < lines_.size()) fail(lines_[pos_].number, "unexpected indentation");
    return v;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw_error(source_, ":", line, ": ", what);
  }

  static bool is_sequence_item(const std::string& t) { return t == "-" || t.rfind("- ", 0) == 0; }

  // Walks t outside quotes, calling visit(i, depth) with the bracket depth at each character,
  // until visit returns true; returns that position (or npos) and leaves the final depth in depth.
  template <class Visit>
  static size_t scan_unquoted(const std::string& t, int& depth, Visit visit) {
    char quote = 0;
    depth = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (quote) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '\'' || c == '"') quote = c;
      else if (c == '[' || c == '{') ++depth;
      else if (c == ']' || c == '}') --depth;
      else if (visit(i, depth)) return i;
    }
    return std::string::npos;
  }

  // Position of the ':' that ends a mapping key on this line, or npos.
  static size_t key_colon(const std::string& t) {
    int depth = 0;
    return scan_unquoted(t, depth, [&](size_t i, int d) { return t[i] == ':' && d == 0 && (i + 1 == t.size() || t[i + 1] == ' '); });
  }

  Value parse_block(int indent) {
    const YamlLine& line = lines_[pos_];
    // Each block level is a recursion: a file indenting 100 000 levels deep must not overflow the stack.
    struct Level {
      int& depth;
      explicit Level(int& d) : depth(++d) {}
      ~Level() { --depth; }
    } level(block_depth_);
    if (block_depth_ > 64) fail(line.number, "blocks nested deeper than 64 levels");
    if (line.text[0] == '[' || line.text[0] == '{') return parse_inline(line.text, line.number, indent);
    return is_sequence_item(line.text) ? parse_sequence(indent) : parse_mapping(indent);
  }

  Value parse_sequence(int indent) {
    Value seq = Value::make_list();
    seq.line = lines_[pos_].number;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && is_sequence_item(lines_[pos_].text)) {
      const YamlLine line = lines_[pos_];
      const std::string rest = line.text.size() > 2 ? line.text.substr(2) : "";
      if (rest.empty()) {
        ++pos_;
        if (pos_ >= lines_.size() || lines_[pos_].indent <= indent) fail(line.number, "empty sequence item");
        seq.items.push_back(parse_block(lines_[pos_].indent));
      } else {
        seq.items.push_back(parse_inline(rest, line.number, indent + 2));
      }
    }
    return seq;
  }

  Value parse_mapping(int indent) {
    Value map = Value::make_dict();
    map.line = lines_[pos_].number;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent) {
      const YamlLine line = lines_[pos_];
      if (is_sequence_item(line.text)) fail(line.number, "a sequence item where a 'key: value' was expected");
      const size_t colon = key_colon(line.text);
      if (colon == std::string::npos) fail(line.number, "expected 'key: value', found '" + line.text + "'");
      std::string key = line.text.substr(0, colon);
      if (key.size() >= 2 && (key[0] == '\'' || key[0] == '"') && key.back() == key[0]) key = key.substr(1, key.size() - 2);
      if (map.find(key)) fail(line.number, "duplicate key '" + key + "'");
      std::string rest = line.text.substr(colon + 1);
      while (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (!rest.empty()) {
        map.dict.emplace_back(key, parse_inline(rest, line.number, indent + 1));
        continue;
      }
      ++pos_;
      if (pos_ < lines_.size() &&
          (lines_[pos_].indent > indent || (lines_[pos_].indent == indent && is_sequence_item(lines_[pos_].text)))) {
        map.dict.emplace_back(key, parse_block(lines_[pos_].indent));
      } else {
        Value empty;
        empty.line = line.number;
        map.dict.emplace_back(key, empty);
      }
    }
    return map;
  }

  // A value written after "key:" or "- ": a flow collection (joining continuation lines until its
  // brackets close), a nested "key: value" inside a sequence item, or a scalar.
  Value parse_inline(const std::string& first, int line_number, int child_indent) {
    ++pos_;
    if (first[0] != '[' && first[0] != '{') {
      const size_t colon = key_colon(first);
      if (colon != std::string::npos && first[0] != '\'' && first[0] != '"') {
        // "- key: value" starts a mapping inside a sequence item
        --pos_;
        lines_[pos_].text = first;
        lines_[pos_].indent = child_indent;
        return parse_mapping(child_indent);
      }
      return scalar(first, line_number);
    }
    text_ = first;
    line_starts_ = {{0, line_number}};
    while (!brackets_closed(text_)) {
      if (pos_ >= lines_.size()) fail(line_number, "unclosed bracket in flow collection");
      line_starts_.push_back({text_.size() + 1, lines_[pos_].number});
      text_ += " " + lines_[pos_].text;
      ++pos_;
    }
    cursor_ = 0;
    Value v = parse_flow(0);
    skip_spaces();
    if (cursor_ != text_.size()) fail(current_line(), "unexpected text after the flow collection");
    return v;
  }

  static bool brackets_closed(const std::string& t) {
    int depth = 0;
    scan_unquoted(t, depth, [](size_t, int) { return false; });
    return depth <= 0;
  }

  int current_line() const {
    int line = line_starts_.front().second;
    for (const auto& [offset, number] : line_starts_)
      if (cursor_ >= offset) line = number;
    return line;
  }
  void skip_spaces() {
    while (cursor_ < text_.size() && text_[cursor_] == ' ') ++cursor_;
  }

  Value parse_flow(int depth) {
    if (depth > 64) fail(current_line(), "nesting deeper than 64 levels");
    skip_spaces();
    if (cursor_ >= text_.size()) fail(current_line(), "unexpected end of a flow collection");
    const int line = current_line();
    const char c = text_[cursor_];
    if (c == '[' || c == '{') {
      const char close = c == '[' ? ']' : '}';
      Value v = c == '[' ? Value::make_list() : Value::make_dict();
      v.line = line;
      ++cursor_;
      skip_spaces();
      if (cursor_ < text_.size() && text_[cursor_] == close) {
        ++cursor_;
        return v;
      }
      while (true) {
        if (c == '[') {
          v.items.push_back(parse_flow(depth + 1));
        } else {
          Value key = parse_flow(depth + 1);
          skip_spaces();
          if (cursor_ >= text_.size() || text_[cursor_] != ':') fail(current_line(), "expected ':' in a flow mapping");
          ++cursor_;
          v.dict.emplace_back(key.kind == Value::Kind::string ? key.str : scalar_text(key), parse_flow(depth + 1));
        }
        skip_spaces();
        if (cursor_ < text_.size() && text_[cursor_] == ',') {
          ++cursor_;
          skip_spaces();
          if (cursor_ < text_.size() && text_[cursor_] == close) {  // a trailing comma is allowed
            ++cursor_;
            return v;
          }
          continue;
        }
        if (cursor_ < text_.size() && text_[cursor_] == close) {
          ++cursor_;
          return v;
        }
        fail(current_line(), std::string("expected ',' or '") + close + "' in a flow collection");
      }
    }
    // A scalar: quoted, or plain up to the next , ] } (or : in a mapping) outside parentheses.
    if (c == '\'' || c == '"') {
      const size_t end = text_.find(c, cursor_ + 1);
      if (end == std::string::npos) fail(line, "unterminated quoted string");
      Value v = Value::make_string(text_.substr(cursor_ + 1, end - cursor_ - 1));
      v.line = line;
      cursor_ = end + 1;
      return v;
    }
    const size_t start = cursor_;
    int parens = 0;
    while (cursor_ < text_.size()) {
      const char d = text_[cursor_];
      if (d == '(') ++parens;
      else if (d == ')') --parens;
      else if (parens == 0 && (d == ',' || d == ']' || d == '}' || (d == ':' && cursor_ + 1 < text_.size() && text_[cursor_ + 1] == ' '))) break;
      ++cursor_;
    }
    std::string token = text_.substr(start, cursor_ - start);
    while (!token.empty() && token.back() == ' ') token.pop_back();
    if (token.empty()) fail(line, "empty value in a flow collection");
    return scalar(token, line);
  }

  static std::string scalar_text(const Value& v) {
    switch (v.kind) {
      case Value::Kind::integer: return std::to_string(v.integer);
      case Value::Kind::boolean: return v.boolean ? "true" : "false";
      default: return v.str;
    }
  }

  // Types a plain scalar the way YAML 1.1 / PyYAML does for the forms configs use.
  static Value scalar(const std::string& token, int line) {
    Value v;
    v.line = line;
    if (token.size() >= 2 && (token[0] == '\'' || token[0] == '"') && token.back() == token[0]) {
      v.kind = Value::Kind::string;
      v.str = token.substr(1, token.size() - 2);
      return v;
    }
    if (token == "null" || token == "Null" || token == "NULL" || token == "~") return v;
    if (token == "true" || token == "True" || token == "TRUE") return Value::make_bool(true);
    if (token == "false" || token == "False" || token == "FALSE") return Value::make_bool(false);
    size_t i = (token[0] == '-' || token[0] == '+') ? 1 : 0;
    bool digits = i < token.size(), integer = true;
    bool seen_digit = false;
    for (size_t j = i; j < token.size(); ++j) {
      const char c = token[j];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        seen_digit = true;
      } else if (c == '.' || c == 'e' || c == 'E' || ((c == '-' || c == '+') && (token[j - 1] == 'e' || token[j - 1] == 'E'))) {
        integer = false;
      } else {
        digits = false;
        break;
      }
    }
    if (digits && seen_digit) {
      try {
        size_t used = 0;
        if (integer) {
          v = Value::make_int(std::stoll(token, &used));
        } else {
          v = Value::make_real(std::stod(token, &used));
        }
        if (used == token.size()) {
          v.line = line;
          return v;
        }
      } catch (const std::exception&) {
      }
    }
    v = Value::make_string(token);
    v.line = line;
    return v;
  }

  std::string source_;
  std::vector<YamlLine> lines_;
  size_t pos_ = 0;
  int block_depth_ = 0;  // block levels being parsed (parse_block)
  std::string text_;  // the flow collection being parsed
  std::vector<std::pair<size_t, int>> line_starts_;
  size_t cursor_ = 0;
};

}  // namespace detail

inline Value parse_yaml(const std::string& text, const std::string& source) {
  return detail::YamlParser(text, source).parse_document();
}

inline Value load_yaml(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  return parse_yaml(std::string(bytes.begin(), bytes.end()), path);
}

}  // namespace pdyolo::io
