// Detection datasets: PASCAL VOC (VOCdevkit layouts, splits, 07+12 unions), YOLO txt folders, and
// dataset YAML files in the style of the official data/*.yaml (which may also point at VOC data).
// Every sample holds boxes as pixel edges (x1, y1, x2, y2) of the original image. A malformed
// annotation, missing image or bad box is reported with its file (and line) and skipped; the
// dataset keeps the messages and the counts so a run can print them at the end.
#pragma once
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "pdyolo/data/image_io.hpp"
#include "pdyolo/data/xml.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/io/yaml.hpp"

namespace pdyolo::data {

struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixel edges in the original image
  int64_t cls = 0;
  bool difficult = false;  // VOC: ignored by evaluation
  bool truncated = false;  // VOC: the object extends beyond the image (informational)
};

struct Sample {
  std::string id;
  std::string image_path;
  int64_t width = 0, height = 0;  // as annotated (VOC) or read from the image header (YOLO txt)
  std::vector<Box> boxes;
};

struct Dataset {
  std::vector<std::string> names;  // class names, index = class id
  std::vector<Sample> samples;
  std::vector<std::string> problems;  // one line per skipped item or object, naming its file
  int64_t skipped_images = 0, skipped_objects = 0;

  void report(std::ostream& os) const {
    for (const std::string& p : problems) os << "warning: " << p << "\n";
    if (skipped_images || skipped_objects)
      os << "skipped " << skipped_images << " image(s) and " << skipped_objects << " object(s); see the warnings above\n";
  }
};

inline const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {"aeroplane", "bicycle", "bird",  "boat",      "bottle", "bus",         "car",
                                                 "cat",       "chair",   "cow",   "diningtable", "dog",  "horse",       "motorbike",
                                                 "person",    "pottedplant", "sheep", "sofa",  "train",  "tvmonitor"};
  return names;
}

namespace detail {

namespace fs = std::filesystem;

inline std::string read_text(const std::string& path) {
  const std::vector<char> bytes = io::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = 0;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    if (start < line.size()) lines.push_back(line.substr(start));
  }
  return lines;
}

inline bool parse_float(const std::string& s, float& out) {
  try {
    size_t used = 0;
    out = std::stof(s, &used);
    return used == s.size() && std::isfinite(out);
  } catch (const std::exception&) {
    return false;
  }
}

// Clips a box to the image; returns a problem description, or "" when the box is usable.
inline std::string clip_box(Box& b, int64_t width, int64_t height) {
  if (!(b.x2 > b.x1 && b.y2 > b.y1)) return "zero or negative area";
  b.x1 = std::clamp(b.x1, 0.0f, static_cast<float>(width));
  b.x2 = std::clamp(b.x2, 0.0f, static_cast<float>(width));
  b.y1 = std::clamp(b.y1, 0.0f, static_cast<float>(height));
  b.y2 = std::clamp(b.y2, 0.0f, static_cast<float>(height));
  if (!(b.x2 > b.x1 && b.y2 > b.y1)) return "entirely outside the image";
  return "";
}

inline int64_t class_index(const std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int64_t>(i);
  return -1;
}

// One VOC annotation (the text of `xml_path`) → sample (boxes in pixel edges: x1 = xmin − 1,
// y1 = ymin − 1, x2 = xmax, y2 = ymax). Problems go to ds.problems; nullopt when the file is unusable.
inline std::optional<Sample> parse_voc_annotation(const std::string& xml_text, const std::string& xml_path, const std::string& image_path,
                                                  const std::vector<std::string>& names, bool keep_difficult, Dataset& ds) {
  XmlNode root;
  try {
    root = parse_xml(xml_text, xml_path);
  } catch (const Error& e) {
    ds.problems.push_back(e.what());
    return std::nullopt;
  }
  auto number = [&](const XmlNode* parent, const char* field, float& out) {
    const XmlNode* n = parent ? parent->child(field) : nullptr;
    if (!n || !parse_float(n->text, out)) {
      ds.problems.push_back(xml_path + ":" + std::to_string(n ? n->line : parent ? parent->line : root.line) + ": field '" +
                            field + "' is missing or not a number");
      return false;
    }
    return true;
  };
  Sample s;
  s.image_path = image_path;
  s.id = fs::path(image_path).stem().string();
  float w = 0, h = 0;
  const XmlNode* size = root.child("size");
  if (!size) {
    ds.problems.push_back(xml_path + ":" + std::to_string(root.line) + ": no <size> element");
    return std::nullopt;
  }
  if (!number(size, "width", w) || !number(size, "height", h)) return std::nullopt;
  if (w < 1 || h < 1) {
    ds.problems.push_back(xml_path + ":" + std::to_string(size->line) + ": image size " + std::to_string(w) + "x" + std::to_string(h) + " is empty");
    return std::nullopt;
  }
  if (w > kMaxImageSide || h > kMaxImageSide) {  // (checked before the conversion to integers below)
    ds.problems.push_back(xml_path + ":" + std::to_string(size->line) + ": image size " + std::to_string(w) + "x" + std::to_string(h) +
                          " is larger than " + std::to_string(kMaxImageSide) + " a side");
    return std::nullopt;
  }
  s.width = static_cast<int64_t>(w);
  s.height = static_cast<int64_t>(h);
  for (const XmlNode& obj : root.children) {
    if (obj.name != "object") continue;
    const XmlNode* name = obj.child("name");
    const std::string where = xml_path + ":" + std::to_string(obj.line) + ": object";
    const int64_t cls = name ? class_index(names, name->text) : -1;
    if (cls < 0) {
      ds.problems.push_back(where + ": unknown class '" + (name ? name->text : "") + "'");
      ++ds.skipped_objects;
      continue;
    }
    Box b;
    b.cls = cls;
    const XmlNode* difficult = obj.child("difficult");
    b.difficult = difficult && difficult->text == "1";
    const XmlNode* truncated = obj.child("truncated");
    b.truncated = truncated && truncated->text == "1";
    if (b.difficult && !keep_difficult) continue;
    const XmlNode* bb = obj.child("bndbox");
    float xmin, ymin, xmax, ymax;
    if (!bb || !number(bb, "xmin", xmin) || !number(bb, "ymin", ymin) || !number(bb, "xmax", xmax) || !number(bb, "ymax", ymax)) {
      if (!bb) ds.problems.push_back(where + ": no <bndbox>");
      ++ds.skipped_objects;
      continue;
    }
    b.x1 = xmin - 1;
    b.y1 = ymin - 1;
    b.x2 = xmax;
    b.y2 = ymax;
    const std::string problem = clip_box(b, s.width, s.height);
    if (!problem.empty()) {
      ds.problems.push_back(where + ": box " + problem + ", skipped");
      ++ds.skipped_objects;
      continue;
    }
    s.boxes.push_back(b);
  }
  return s;
}

inline std::optional<Sample> read_voc_annotation(const std::string& xml_path, const std::string& image_path,
                                                 const std::vector<std::string>& names, bool keep_difficult, Dataset& ds) {
  std::string text;
  try {
    text = read_text(xml_path);
  } catch (const Error& e) {
    ds.problems.push_back(e.what());
    return std::nullopt;
  }
  return parse_voc_annotation(text, xml_path, image_path, names, keep_difficult, ds);
}

}  // namespace detail

struct VocOptions {
  bool keep_difficult = true;  // evaluation ignores them; training may leave them out
};

// Class names from root/classes.txt when present, else the 20 VOC classes.
inline std::vector<std::string> voc_names_for(const std::string& root) {
  const std::string file = root + "/classes.txt";
  if (std::filesystem::exists(file)) return detail::read_lines(file);
  return voc_class_names();
}

// `root` is a VOCdevkit folder or one VOC-layout folder; each split is NAME (root/ImageSets/Main/
// NAME.txt) or SUBDIR/NAME (root/SUBDIR/ImageSets/Main/NAME.txt), e.g. {"VOC2007/trainval", "VOC2012/trainval"}.
inline Dataset load_voc(const std::string& root, const std::vector<std::string>& splits,
                        std::vector<std::string> names = {}, const VocOptions& options = VocOptions()) {
  PDYOLO_CHECK(std::filesystem::is_directory(root), root, ": not a directory");
  PDYOLO_CHECK(!splits.empty(), root, ": no split given");
  Dataset ds;
  ds.names = names.empty() ? voc_names_for(root) : std::move(names);
  for (const std::string& split : splits) {
    const size_t slash = split.rfind('/');
    const std::string base = slash == std::string::npos ? root : root + "/" + split.substr(0, slash);
    const std::string name = slash == std::string::npos ? split : split.substr(slash + 1);
    const std::string list = base + "/ImageSets/Main/" + name + ".txt";
    PDYOLO_CHECK(std::filesystem::exists(list), list, ": split file not found");
    const std::vector<std::string> ids = detail::read_lines(list);
    PDYOLO_CHECK(!ids.empty(), list, ": the split lists no images");
    for (const char* folder : {"/Annotations", "/JPEGImages"})  // a missing folder is one error, not one per image
      PDYOLO_CHECK(std::filesystem::is_directory(base + folder), base + folder, ": folder not found (", list, " lists ", ids.size(),
                   " images in VOC layout)");
    for (const std::string& line : ids) {
      const std::string id = line.substr(0, line.find_first_of(" \t"));
      const std::string xml = base + "/Annotations/" + id + ".xml";
      std::string image = base + "/JPEGImages/" + id + ".jpg";
      if (!std::filesystem::exists(image))
        for (const char* ext : {".png", ".jpeg", ".bmp"})
          if (std::filesystem::exists(base + "/JPEGImages/" + id + ext)) image = base + "/JPEGImages/" + id + ext;
      if (!std::filesystem::exists(image)) {
        ds.problems.push_back(list + ": image for '" + id + "' not found (" + image + ")");
        ++ds.skipped_images;
        continue;
      }
      if (!std::filesystem::exists(xml)) {
        ds.problems.push_back(list + ": annotation for '" + id + "' not found (" + xml + ")");
        ++ds.skipped_images;
        continue;
      }
      std::optional<Sample> s = detail::read_voc_annotation(xml, image, ds.names, options.keep_difficult, ds);
      if (!s) {
        ++ds.skipped_images;
        continue;
      }
      ds.samples.push_back(std::move(*s));
    }
  }
  return ds;
}

// YOLO txt: the label of .../images/x.jpg is .../labels/x.txt (any other image folder: its sibling
// folder "labels"); each line "class cx cy w h" normalised to [0, 1]. `source` is a folder of
// images, a .txt file listing image paths, or a list of either.
inline Dataset load_yolo_txt(const std::vector<std::string>& sources, std::vector<std::string> names) {
  namespace fs = std::filesystem;
  Dataset ds;
  ds.names = std::move(names);
  std::vector<std::string> images;
  for (const std::string& src : sources) {
    if (fs::is_directory(src)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(src)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp") found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      images.insert(images.end(), found.begin(), found.end());
    } else {
      PDYOLO_CHECK(fs::exists(src), src, ": no such file or directory");
      const std::string dir = fs::path(src).parent_path().string();
      for (const std::string& line : detail::read_lines(src)) images.push_back(fs::path(line).is_absolute() ? line : dir + "/" + line);
    }
  }
  PDYOLO_CHECK(!images.empty(), "YOLO dataset: no images found in the given source(s)");
  for (const std::string& image : images) {
    fs::path p(image);
    std::string label = image;
    const size_t at = label.rfind("/images/");
    if (at != std::string::npos) label = label.substr(0, at) + "/labels/" + label.substr(at + 8);
    else label = (p.parent_path().parent_path() / "labels" / p.filename()).string();
    label = fs::path(label).replace_extension(".txt").string();
    int w = 0, h = 0;
    try {
      std::tie(w, h) = image_size(io::read_file(image), image);
    } catch (const Error& e) {
      ds.problems.push_back(e.what());
      ++ds.skipped_images;
      continue;
    }
    Sample s;
    s.image_path = image;
    s.id = p.stem().string();
    s.width = w;
    s.height = h;
    if (fs::exists(label)) {  // no label file: an image without objects
      int line_no = 0;
      std::istringstream in(detail::read_text(label));
      for (std::string line; std::getline(in, line);) {
        ++line_no;
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string x; fields >> x;) f.push_back(x);
        if (f.empty()) continue;
        const std::string where = label + ":" + std::to_string(line_no);
        float v[5];
        bool ok = f.size() == 5;
        for (size_t i = 0; ok && i < 5; ++i) ok = detail::parse_float(f[i], v[i]);
        if (!ok || v[0] < 0 || v[0] != std::floor(v[0]) || v[0] > 1e6f) {  // (before the conversion to an integer)
          ds.problems.push_back(where + ": expected 'class cx cy w h', found '" + line + "'");
          ++ds.skipped_objects;
          continue;
        }
        Box b;
        b.cls = static_cast<int64_t>(v[0]);
        if (b.cls >= static_cast<int64_t>(ds.names.size())) {
          ds.problems.push_back(where + ": class " + f[0] + " is not below nc=" + std::to_string(ds.names.size()));
          ++ds.skipped_objects;
          continue;
        }
        b.x1 = (v[1] - v[3] / 2) * w;
        b.y1 = (v[2] - v[4] / 2) * h;
        b.x2 = (v[1] + v[3] / 2) * w;
        b.y2 = (v[2] + v[4] / 2) * h;
        const std::string problem = detail::clip_box(b, w, h);
        if (!problem.empty()) {
          ds.problems.push_back(where + ": box " + problem + ", skipped");
          ++ds.skipped_objects;
          continue;
        }
        s.boxes.push_back(b);
      }
    }
    ds.samples.push_back(std::move(s));
  }
  return ds;
}

// A dataset YAML (official style: train/val paths, nc, names) or, with `format: voc`, a VOC root and
// its splits. Relative paths are taken relative to the YAML file. `split` is "train" or "val" (or
// any key of the file); a VOC directory may also be given directly as `data` with split NAME(s).
inline Dataset load_dataset(const std::string& data, const std::string& split) {
  namespace fs = std::filesystem;
  if (fs::is_directory(data)) return load_voc(data, {split});
  const io::Value cfg = io::load_yaml(data);
  PDYOLO_CHECK(cfg.is(io::Value::Kind::dict), data, ": a dataset YAML must be a mapping");
  const std::string dir = fs::path(data).parent_path().string();
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() || dir.empty() ? p : dir + "/" + p; };
  auto strings = [&](const io::Value& v, const std::string& field) {
    std::vector<std::string> out;
    if (v.is(io::Value::Kind::string)) out.push_back(v.str);
    else if (v.is(io::Value::Kind::list))
      for (const io::Value& x : v.items) {
        PDYOLO_CHECK(x.is(io::Value::Kind::string), data, ":", x.line, ": field '", field, "' holds a non-string entry");
        out.push_back(x.str);
      }
    else throw_error(data, ":", v.line, ": field '", field, "' must be a string or a list of strings");
    return out;
  };
  std::vector<std::string> names;
  if (const io::Value* n = cfg.find("names")) names = strings(*n, "names");
  if (const io::Value* nc = cfg.find("nc")) {
    PDYOLO_CHECK(nc->is(io::Value::Kind::integer) && nc->integer > 0, data, ":", nc->line, ": field 'nc' must be a positive integer");
    if (names.empty())
      for (int64_t i = 0; i < nc->integer; ++i) names.push_back("class" + std::to_string(i));
    PDYOLO_CHECK(static_cast<int64_t>(names.size()) == nc->integer, data, ":", nc->line, ": nc is ", nc->integer, " but ",
                 names.size(), " names are given");
  }
  const io::Value* entry = cfg.find(split);
  PDYOLO_CHECK(entry, data, ": no field '", split, "' (the split to load)");
  const std::vector<std::string> parts = strings(*entry, split);
  const io::Value* format = cfg.find("format");
  if (format && format->str == "voc") {
    const io::Value* root = cfg.find("root");
    PDYOLO_CHECK(root && root->is(io::Value::Kind::string), data, ": format voc needs a field 'root'");
    return load_voc(resolve(root->str), parts, names);
  }
  PDYOLO_CHECK(!format || format->str == "yolo", data, ":", format ? format->line : 0, ": field 'format' must be yolo or voc");
  PDYOLO_CHECK(!names.empty(), data, ": a YOLO dataset needs 'names' or 'nc'");
  std::vector<std::string> sources;
  for (const std::string& p : parts) sources.push_back(resolve(p));
  return load_yolo_txt(sources, names);
}

}  // namespace pdyolo::data
