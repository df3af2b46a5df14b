// A small XML reader for PASCAL VOC annotations: elements, text, attributes (skipped), comments,
// declarations and CDATA. Errors name the file and the line.
#pragma once
#include <cctype>
#include <string>
#include <vector>

#include "pdyolo/core/error.hpp"

namespace pdyolo::data {

struct XmlNode {
  std::string name;
  std::string text;  // concatenated character data directly inside this element, trimmed
  std::vector<XmlNode> children;
  int line = 0;

  const XmlNode* child(const std::string& n) const {
    for (const XmlNode& c : children)
      if (c.name == n) return &c;
    return nullptr;
  }
};

namespace detail {

class XmlParser {
 public:
  XmlParser(const std::string& text, std::string source) : s_(text), source_(std::move(source)) {}

  XmlNode parse_document() {
    skip_misc();
    if (pos_ >= s_.size()) fail("empty document: no root element");
    XmlNode root = parse_element(0);
    skip_misc();
    if (pos_ < s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw_error(source_, ":", line_, ": ", what, pos_ >= s_.size() && !s_.empty() ? " (the file ends here: truncated?)" : "");
  }
  void advance(size_t n = 1) {
    for (size_t i = 0; i < n && pos_ < s_.size(); ++i)
      if (s_[pos_++] == '\n') ++line_;
  }
  bool starts(const char* p) const { return s_.compare(pos_, std::char_traits<char>::length(p), p) == 0; }
  void skip_until(const char* end) {
    const size_t at = s_.find(end, pos_);
    if (at == std::string::npos) fail(std::string("unterminated construct, expected '") + end + "'");
    advance(at + std::char_traits<char>::length(end) - pos_);
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) advance();
  }
  void skip_misc() {  // whitespace, comments, <?…?> declarations, <!DOCTYPE …>
    while (true) {
      skip_space();
      if (starts("<!--")) skip_until("-->");
      else if (starts("<?")) skip_until("?>");
      else if (starts("<!DOCTYPE")) skip_until(">");
      else return;
    }
  }
  std::string name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '-' ||
                                s_[pos_] == ':' || s_[pos_] == '.'))
      advance();
    if (pos_ == start) fail("expected a name");
    return s_.substr(start, pos_ - start);
  }
  static std::string trim(const std::string& t) {
    size_t a = 0, b = t.size();
    while (a < b && std::isspace(static_cast<unsigned char>(t[a]))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(t[b - 1]))) --b;
    return t.substr(a, b - a);
  }
  // "#65" or "#x41" → the code point, checked digit by digit (1 … 0x10FFFF).
  uint32_t character_reference(const std::string& e) const {
    const bool hex = e.size() > 1 && e[1] == 'x';
    const std::string digits = e.substr(hex ? 2 : 1);
    uint32_t value = 0;
    for (char c : digits) {
      const int d = c >= '0' && c <= '9' ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail("bad character reference &" + e + ";");
      value = value * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      if (value > 0x10FFFF) fail("character reference &" + e + "; is beyond Unicode");
    }
    if (digits.empty() || value == 0) fail("bad character reference &" + e + ";");
    return value;
  }
  static void append_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | c >> 6), out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | c >> 12), out += static_cast<char>(0x80 | (c >> 6 & 0x3F)), out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | c >> 18), out += static_cast<char>(0x80 | (c >> 12 & 0x3F));
      out += static_cast<char>(0x80 | (c >> 6 & 0x3F)), out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }

  std::string unescape(const std::string& t) const {
    std::string out;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] != '&') {
        out += t[i];
        continue;
      }
      const size_t end = t.find(';', i);
      if (end == std::string::npos) fail("unterminated entity");
      const std::string e = t.substr(i + 1, end - i - 1);
      if (e == "lt") out += '<';
      else if (e == "gt") out += '>';
      else if (e == "amp") out += '&';
      else if (e == "quot") out += '"';
      else if (e == "apos") out += '\'';
      else if (!e.empty() && e[0] == '#') append_utf8(out, character_reference(e));
      else fail("unknown entity &" + e + ";");
      i = end;
    }
    return out;
  }

  XmlNode parse_element(int depth) {
    if (depth > 64) fail("elements nested deeper than 64 levels");
    if (!starts("<")) fail("expected '<'");
    XmlNode node;
    node.line = line_;
    advance();
    node.name = name();
    while (true) {  // attributes
      skip_space();
      if (pos_ >= s_.size()) fail("unterminated start tag <" + node.name + ">");
      if (starts("/>")) {
        advance(2);
        return node;
      }
      if (starts(">")) {
        advance();
        break;
      }
      name();
      skip_space();
      if (!starts("=")) fail("attribute without '=' in <" + node.name + ">");
      advance();
      skip_space();
      const char q = pos_ < s_.size() ? s_[pos_] : 0;
      if (q != '"' && q != '\'') fail("attribute value must be quoted");
      advance();
      skip_until(q == '"' ? "\"" : "'");
    }
    std::string text;
    while (true) {
      if (pos_ >= s_.size()) fail("element <" + node.name + "> is not closed (truncated file?)");
      if (starts("</")) {
        advance(2);
        const int close_line = line_;
        const std::string closing = name();
        skip_space();
        if (!starts(">")) fail("malformed end tag </" + closing + ">");
        advance();
        if (closing != node.name) {
          line_ = close_line;
          fail("end tag </" + closing + "> does not match <" + node.name + "> opened on line " + std::to_string(node.line));
        }
        node.text = trim(unescape(text));
        return node;
      }
      if (starts("<!--")) {
        skip_until("-->");
      } else if (starts("<![CDATA[")) {
        advance(9);
        const size_t end = s_.find("]]>", pos_);
        if (end == std::string::npos) fail("unterminated CDATA");
        text += s_.substr(pos_, end - pos_);
        advance(end + 3 - pos_);
      } else if (starts("<?")) {
        skip_until("?>");
      } else if (starts("<")) {
        node.children.push_back(parse_element(depth + 1));
      } else {
        text += s_[pos_];
        advance();
      }
    }
  }

  const std::string& s_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace detail

inline XmlNode parse_xml(const std::string& text, const std::string& source) {
  return detail::XmlParser(text, source).parse_document();
}

}  // namespace pdyolo::data
