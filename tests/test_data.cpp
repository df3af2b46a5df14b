// Datasets and images: resizing bit-exact against OpenCV, the reference letterbox, the XML reader,
// VOC / YOLO-txt / dataset-YAML loading, and every kind of bad input reported and skipped.
#include "test_main.hpp"

#include <filesystem>
#include <fstream>

#include "pdyolo/data/dataset.hpp"
#include "pdyolo/viz/draw.hpp"
#include "pdyolo/data/image_io.hpp"
#include "pdyolo/data/loader.hpp"
#include "test_util.hpp"

using namespace pdyolo;
namespace fs = std::filesystem;

namespace {

const std::string kData = std::string(PDYOLO_SOURCE_DIR) + "/tests/data/";

data::Image npy_image(const std::string& path) {
  const Tensor t = io::load_npy(path);
  data::Image img(t.shape()[1], t.shape()[0]);
  std::copy(t.data<uint8_t>(), t.data<uint8_t>() + t.numel(), img.pixels.begin());
  return img;
}

void save(const std::string& path, const data::Image& img) {
  fs::create_directories(fs::path(path).parent_path());
  data::save_image(path, img);
}

std::string voc_xml(int w, int h, const std::string& objects) {
  return "<annotation>\n  <filename>x.jpg</filename>\n  <size><width>" + std::to_string(w) + "</width><height>" + std::to_string(h) +
         "</height><depth>3</depth></size>\n" + objects + "</annotation>\n";
}

std::string voc_object(const std::string& name, float xmin, float ymin, float xmax, float ymax, int difficult = 0) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "  <object>\n    <name>%s</name>\n    <difficult>%d</difficult>\n    <truncated>%d</truncated>\n"
                "    <bndbox><xmin>%g</xmin><ymin>%g</ymin><xmax>%g</xmax><ymax>%g</ymax></bndbox>\n  </object>\n",
                name.c_str(), difficult, difficult, xmin, ymin, xmax, ymax);  // difficult ones marked truncated too
  return buf;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  for (const std::string& l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("resize matches OpenCV's cv2.resize bit for bit (INTER_LINEAR and INTER_AREA)") {
  const data::Image src = npy_image(kData + "opencv/src_71x47.npy");
  for (const auto& size : std::vector<std::pair<int, int>>{{35, 23}, {20, 31}, {71, 47}}) {
    const int w = size.first, h = size.second;
    CAPTURE(w);
    CAPTURE(h);
    const data::Image ref = npy_image(kData + "opencv/linear_" + std::to_string(w) + "x" + std::to_string(h) + ".npy");
    CHECK(data::resize_linear(src, w, h).pixels == ref.pixels);
  }
  // Enlarging: exact except the first and last rows, where OpenCV rounds down by one level.
  const data::Image up = data::resize_linear(src, 100, 64), up_ref = npy_image(kData + "opencv/linear_100x64.npy");
  int worst = 0, inner_differences = 0;
  for (size_t i = 0; i < up.pixels.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i) / (100 * 3);
    const int d = std::abs(up.pixels[i] - up_ref.pixels[i]);
    if (row != 0 && row != 63) inner_differences += d != 0;
    worst = std::max(worst, d);
  }
  CHECK(inner_differences == 0);
  CHECK(worst <= 1);
  for (const auto& size : std::vector<std::pair<int, int>>{{35, 23}, {20, 31}, {13, 9}}) {
    const int w = size.first, h = size.second;
    CAPTURE(w);
    CAPTURE(h);
    const data::Image ref = npy_image(kData + "opencv/area_" + std::to_string(w) + "x" + std::to_string(h) + ".npy");
    CHECK(data::resize_area(src, w, h).pixels == ref.pixels);
  }
  CHECK(data::resize_area(npy_image(kData + "opencv/src_60x40.npy"), 30, 20).pixels == npy_image(kData + "opencv/area_30x20.npy").pixels);
}

TEST_CASE("letterbox: sizes, padding and Python's rounding") {
  const data::Image tall(427, 640, 10);
  const data::Letterboxed a = data::letterbox(tall, 320, 320);
  CHECK(a.image.width == 320);
  CHECK(a.image.height == 320);
  CHECK(a.info.gain_x == doctest::Approx(0.5));
  CHECK(a.info.pad_x == doctest::Approx((320 - 214) / 2.0));  // round(213.5) = 214 (half to even)
  CHECK(a.image.at(0, 0)[0] == 114);                           // grey border
  CHECK(a.image.at(160, 160)[0] == 10);
  const data::Letterboxed rect = data::letterbox(data::Image(640, 480), 640, 640, /*auto_pad=*/true);
  CHECK(rect.image.height == 480);  // only padded to a multiple of 32
  const data::Letterboxed no_up = data::letterbox(data::Image(100, 50), 320, 320, false, /*scaleup=*/false);
  CHECK(no_up.info.gain_x == 1.0);
  CHECK(no_up.image.width == 320);
}

TEST_CASE("letterbox reproduces the reference's fixture input" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) {
    return test::skip("../shared is absent; no fixture image to compare");
  }
  const data::Image img = data::load_image(shared + "/data/coco128-voc/JPEGImages/000000000009.jpg");
  const Tensor ours = data::images_to_tensor({data::letterbox(img, 320, 320).image});
  const Tensor ref = io::load_npy(shared + "/fixtures/yolov7-tiny-coco128/input_320.npy");
  REQUIRE(ours.shape() == ref.shape());
  const auto a = ours.to_vector(), b = ref.to_vector();
  double worst = 0, mean = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
    mean += std::fabs(a[i] - b[i]);
  }
  // The only differences left come from JPEG decoding (stb vs libjpeg): at most a grey level or two.
  CHECK(worst * 255 <= 3.01);
  CHECK(mean / a.size() * 255 < 0.05);
}

TEST_CASE("images: decode errors name the file; PNG and JPEG round trips") {
  const std::string dir = test::temp_path("images");
  fs::create_directories(dir);
  data::Image img(8, 6);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7);
  data::save_image(dir + "/x.png", img);
  CHECK(data::load_image(dir + "/x.png").pixels == img.pixels);
  data::save_image(dir + "/x.jpg", img);
  CHECK(data::load_image(dir + "/x.jpg").width == 8);
  test::write_text(dir + "/corrupt.jpg", "\xff\xd8\xff\xe0 this is not really a jpeg");
  const std::string err = test::error_of([&] { data::load_image(dir + "/corrupt.jpg"); });
  CHECK(err.find("corrupt.jpg: cannot decode image") != std::string::npos);
  test::write_text(dir + "/empty.png", "");
  CHECK(test::error_of([&] { data::load_image(dir + "/empty.png"); }).find("empty file") != std::string::npos);
  CHECK(test::error_of([&] { data::load_image(dir + "/missing.png"); }).find("missing.png: no such file") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("hostile images and annotations: declared sizes checked before decoding or converting") {
  const std::string dir = test::temp_path("hostile_data");
  fs::remove_all(dir);
  fs::create_directories(dir + "/JPEGImages");
  // A PNG header declaring 12000 × 12000 pixels (432 MB to decode, and more for the letterbox).
  auto be32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
    return s;
  };
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(12000) + be32(12000) + std::string("\x08\x02\x00\x00\x00", 5) +
                          be32(0) + std::string(64, '\0');
  test::write_text(dir + "/JPEGImages/huge.png", png);
  CHECK(test::error_of([&] { data::load_image(dir + "/JPEGImages/huge.png"); }).find("huge.png: the image declares 12000x12000 pixels") !=
        std::string::npos);
  // Formats other than JPEG, PNG and BMP are refused before stb sees them.
  test::write_text(dir + "/JPEGImages/anim.gif", "GIF89a\x01\x00\x01\x00\x00\x00\x00;");
  CHECK(test::error_of([&] { data::load_image(dir + "/JPEGImages/anim.gif"); }).find("anim.gif: cannot decode image (not a JPEG, PNG or BMP file") !=
        std::string::npos);
  // A JPEG Huffman table declaring 16 × 255 codes: Debian's stb_image writes past the table (found
  // by tests/fuzz/fuzz_image), so pdyolo checks every table first — before the scan and after it.
  const std::string bad_table = std::string("\xFF\xC4\x00\x13\x00", 5) + std::string(16, '\xFF');
  const std::string jfif = std::string("\xFF\xD8\xFF\xE0\x00\x04\x00\x00", 8);
  test::write_text(dir + "/JPEGImages/huffman.jpg", jfif + bad_table + "\xFF\xD9");
  CHECK(test::error_of([&] { data::load_image(dir + "/JPEGImages/huffman.jpg"); }).find("huffman.jpg: corrupt JPEG: a Huffman table at byte 12 declares 4080 codes") !=
        std::string::npos);
  test::write_text(dir + "/JPEGImages/late.jpg", jfif + std::string("\xFF\xDA\x00\x02\x12\xFF\x00\x34", 8) + bad_table);
  CHECK(test::error_of([&] { data::load_image(dir + "/JPEGImages/late.jpg"); }).find("declares 4080 codes") != std::string::npos);
  // A BMP 1 pixel wide and 0 high decoded to an empty image (found by fuzz_image's long run).
  test::write_text(dir + "/JPEGImages/flat.bmp", std::string("BMN\x01\0\0\0\0\0\0" "6\0\0\0(\0\0\0\x01\0\0\0\0\0\0\0\x01\0\x18\0", 30) +
                                                     std::string(24, '\0'));
  CHECK(test::error_of([&] { data::load_image(dir + "/JPEGImages/flat.bmp"); }).find("flat.bmp: the image declares 1x0 pixels; an image needs at least one") !=
        std::string::npos);
  // A corrupt JPEG scan that a marker ends early: stb's bit count goes negative and it then shifts a
  // zero byte by 33 bits (found by fuzz_image's long run; the sanitizer build of this suite stopped
  // here before stb's decoder was exempted from that one check). It decodes, the same every time.
  const std::string negative_code_bits = std::string(PDYOLO_SOURCE_DIR) + "/tests/fuzz/corpus/image/jpeg_negative_code_bits.jpg";
  const data::Image corrupt = data::load_image(negative_code_bits);
  CHECK(corrupt.width == 13);
  CHECK(corrupt.height == 7);
  CHECK(data::load_image(negative_code_bits).pixels == corrupt.pixels);
  // A 26-byte JPEG declaring 15011 × 8263 pixels, within the size limits: stb filled the missing data
  // with zeros and decoded it to 372 MB (found as a slow unit by fuzz_image's long run). A BMP with
  // its header alone likewise. Both are refused as truncated before decoding.
  const std::string truncated_jpeg = std::string(PDYOLO_SOURCE_DIR) + "/tests/fuzz/corpus/image/jpeg_truncated_huge.jpg";
  CHECK(test::error_of([&] { data::load_image(truncated_jpeg); })
            .find("jpeg_truncated_huge.jpg: truncated: the image declares 15011x8263 pixels, which take at least 121183 bytes, but the file holds 26") !=
        std::string::npos);
  test::write_text(dir + "/JPEGImages/header_only.bmp", std::string("BMN\x01\0\0\0\0\0\0" "6\0\0\0(\0\0\0\xA0\x0F\0\0\xB8\x0B\0\0\x01\0\x18\0", 30) +
                                                            std::string(24, '\0'));
  CHECK(test::error_of([&] { data::image_size(io::read_file(dir + "/JPEGImages/header_only.bmp"), "header_only.bmp"); })
            .find("header_only.bmp: truncated: the image declares 4000x3000 pixels, which take at least 36000054 bytes, but the file holds 54") !=
        std::string::npos);
  // A BMP missing its last row decoded with that row black: a BMP must hold every row (only the last
  // row's padding may be missing). 13 × 7 pixels, 24-bit: rows of 39 bytes padded to 40, from byte 54.
  const std::vector<char> bmp = io::read_file(std::string(PDYOLO_SOURCE_DIR) + "/tests/fuzz/corpus/image/rgb.bmp");
  CHECK(data::decode_image(bmp, "rgb.bmp").height == 7);
  CHECK(data::decode_image(std::vector<char>(bmp.begin(), bmp.end() - 1), "unpadded.bmp").height == 7);
  CHECK(test::error_of([&] { data::decode_image(std::vector<char>(bmp.begin(), bmp.end() - 40), "cut.bmp"); })
            .find("cut.bmp: truncated: the image declares 13x7 pixels, which take at least 333 bytes, but the file holds 294") != std::string::npos);
  // A VOC annotation with a 35-digit height (once undefined behaviour in the float → int conversion).
  save(dir + "/JPEGImages/big.jpg", data::Image(10, 10));
  test::write_text(dir + "/Annotations/big.xml",
             "<annotation><size><width>10</width><height>99999999999999999999999999999999999</height></size></annotation>");
  test::write_text(dir + "/ImageSets/Main/all.txt", "big\n");
  test::write_text(dir + "/classes.txt", "cat\n");
  const data::Dataset voc = data::load_voc(dir, {"all"});
  CHECK(voc.samples.empty());
  CHECK(voc.skipped_images == 1);
  CHECK(any_contains(voc.problems, "big.xml:1", "is larger than 16384 a side"));
  // Without its Annotations folder the split is one error naming the folder.
  fs::remove_all(dir + "/Annotations");
  CHECK(test::error_of([&] { data::load_voc(dir, {"all"}); }).find(dir + "/Annotations: folder not found") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("XML reader") {
  const data::XmlNode root = data::parse_xml(
      "<?xml version=\"1.0\"?>\n<!-- c -->\n<a x=\"1\">\n  <b>text &amp; more</b>\n  <c/>\n  <d><![CDATA[<raw>]]></d>\n</a>\n", "t.xml");
  CHECK(root.name == "a");
  CHECK(root.child("b")->text == "text & more");
  CHECK(root.child("b")->line == 4);
  CHECK(root.child("c") != nullptr);
  CHECK(root.child("d")->text == "<raw>");
  CHECK(test::error_of([] { data::parse_xml("<a>\n<b>\n</a>", "t.xml"); }).find("t.xml:3: end tag </a> does not match <b>") != std::string::npos);
  CHECK(test::error_of([] { data::parse_xml("<a>\n<b>x</b>\n", "t.xml"); }).find("is not closed") != std::string::npos);
  CHECK(test::error_of([] { data::parse_xml("", "e.xml"); }).find("e.xml:1: empty document") != std::string::npos);
  // Character references become UTF-8; malformed ones (an empty "&#;" once escaped as an uncaught
  // std::invalid_argument, found by tests/fuzz/fuzz_xml) are errors naming the line.
  CHECK(data::parse_xml("<a>&#65;&#x42;&#xe9;&#8364;&#x1F600;</a>", "t.xml").text == "AB\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  for (const char* bad : {"&#;", "&#x;", "&#12a;", "&#-5;", "&#0;", "&#99999999999999999999;", "&#x110000;"}) {
    CAPTURE(bad);
    CHECK(test::error_of([&] { data::parse_xml(std::string("<a>\n") + bad + "</a>", "t.xml"); }).find("t.xml:") != std::string::npos);
  }
}

TEST_CASE("VOC: good annotations, and every bad input reported with its file and skipped") {
  const std::string root = test::temp_path("voc");
  fs::remove_all(root);
  const std::vector<std::string> names = {"cat", "dog"};
  test::write_text(root + "/classes.txt", "cat\ndog\n");
  save(root + "/JPEGImages/good.jpg", data::Image(100, 80, 50));
  save(root + "/JPEGImages/truncated.jpg", data::Image(10, 10));
  save(root + "/JPEGImages/empty.jpg", data::Image(10, 10));
  save(root + "/JPEGImages/noxml.jpg", data::Image(10, 10));
  test::write_text(root + "/Annotations/good.xml",
             voc_xml(100, 80,
                     voc_object("cat", 11, 21, 40, 50) +                  // fine: pixel edges (10, 20, 40, 50)
                         voc_object("dog", 90, 70, 130, 95) +             // partly outside: clipped
                         voc_object("dog", 150, 150, 170, 170) +          // entirely outside: skipped
                         voc_object("cat", 30, 30, 29, 40) +              // negative width: skipped
                         voc_object("cat", 30, 30, 30, 40) +              // zero area (x1 = 29, x2 = 30 → 1 px wide) kept
                         voc_object("unicorn", 1, 1, 5, 5) +              // unknown class: skipped
                         voc_object("dog", 1, 1, 9, 9, /*difficult=*/1)));  // difficult: kept and flagged
  const std::string full = voc_xml(10, 10, voc_object("cat", 1, 1, 5, 5));
  test::write_text(root + "/Annotations/truncated.xml", full.substr(0, full.size() / 2));
  test::write_text(root + "/Annotations/empty.xml", "");
  test::write_text(root + "/Annotations/missingimage.xml", full);
  test::write_text(root + "/ImageSets/Main/all.txt", "good\ntruncated\nempty\nmissingimage\nnoxml\n");
  test::write_text(root + "/ImageSets/Main/empty.txt", "\n\n");

  const data::Dataset ds = data::load_voc(root, {"all"});
  CHECK(ds.names == names);
  REQUIRE(ds.samples.size() == 1);
  const data::Sample& s = ds.samples[0];
  CHECK(s.width == 100);
  REQUIRE(s.boxes.size() == 4);
  CHECK(s.boxes[0].x1 == 10.0f);
  CHECK(s.boxes[0].y1 == 20.0f);
  CHECK(s.boxes[0].x2 == 40.0f);
  CHECK(s.boxes[1].x2 == 100.0f);  // clipped to the image
  CHECK(s.boxes[1].y2 == 80.0f);
  CHECK(s.boxes[3].difficult);
  CHECK(s.boxes[3].truncated);
  CHECK_FALSE(s.boxes[0].truncated);
  CHECK(ds.skipped_images == 4);
  CHECK(ds.skipped_objects == 3);
  CHECK(any_contains(ds.problems, "truncated.xml:", "truncated?"));
  CHECK(any_contains(ds.problems, "empty.xml:1", "empty document"));
  CHECK(any_contains(ds.problems, "image for 'missingimage' not found"));
  CHECK(any_contains(ds.problems, "annotation for 'noxml' not found"));
  CHECK(any_contains(ds.problems, "good.xml:", "unknown class 'unicorn'"));
  CHECK(any_contains(ds.problems, "good.xml:", "entirely outside the image"));
  CHECK(any_contains(ds.problems, "good.xml:", "zero or negative area"));
  std::ostringstream report;
  ds.report(report);
  CHECK(report.str().find("skipped 4 image(s) and 3 object(s)") != std::string::npos);
  // Difficult objects can be left out (training), and an empty split file is an error naming it.
  CHECK(data::load_voc(root, {"all"}, {}, {false}).samples[0].boxes.size() == 3);
  CHECK(test::error_of([&] { data::load_voc(root, {"empty"}); }).find("empty.txt: the split lists no images") != std::string::npos);
  CHECK(test::error_of([&] { data::load_voc(root, {"nosuch"}); }).find("nosuch.txt: split file not found") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("VOC 07+12 through a dataset YAML; YOLO txt datasets") {
  const std::string root = test::temp_path("devkit");
  fs::remove_all(root);
  for (const char* year : {"VOC2007", "VOC2012"}) {
    const std::string base = root + "/VOCdevkit/" + year;
    save(base + "/JPEGImages/" + year + "_1.jpg", data::Image(50, 40));
    test::write_text(base + "/Annotations/" + year + "_1.xml", voc_xml(50, 40, voc_object("dog", 1, 1, 20, 20)));
    test::write_text(base + "/ImageSets/Main/trainval.txt", std::string(year) + "_1\n");
  }
  test::write_text(root + "/voc.yaml", "format: voc\nroot: VOCdevkit\ntrain: [VOC2007/trainval, VOC2012/trainval]\nval: VOC2007/trainval\n");
  const data::Dataset train = data::load_dataset(root + "/voc.yaml", "train");
  CHECK(train.samples.size() == 2);
  CHECK(train.names.size() == 20);  // the VOC classes by default
  CHECK(train.samples[0].boxes[0].cls == 11);  // dog
  CHECK(data::load_dataset(root + "/voc.yaml", "val").samples.size() == 1);
  CHECK(test::error_of([&] { data::load_dataset(root + "/voc.yaml", "test"); }).find("no field 'test'") != std::string::npos);

  // YOLO txt: images/ and labels/ side by side.
  save(root + "/yolo/images/a.jpg", data::Image(200, 100));
  save(root + "/yolo/images/b.png", data::Image(20, 20));
  test::write_text(root + "/yolo/labels/a.txt", "0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0 0.1\n7 0.5 0.5 0.1 0.1\nnot a label\n1 0.95 0.5 0.2 0.2\n");
  test::write_text(root + "/yolo/images/c.jpg", "garbage");
  test::write_text(root + "/yolo.yaml", "train: yolo/images\nval: yolo/images\nnc: 2\nnames: ['cat', 'dog']\n");
  const data::Dataset yolo = data::load_dataset(root + "/yolo.yaml", "val");
  REQUIRE(yolo.samples.size() == 2);
  const data::Sample& a = yolo.samples[0];
  REQUIRE(a.boxes.size() == 2);
  CHECK(a.boxes[0].x1 == doctest::Approx(80.0f));
  CHECK(a.boxes[0].y2 == doctest::Approx(70.0f));
  CHECK(a.boxes[1].x2 == doctest::Approx(200.0f));  // clipped at the right edge
  CHECK(yolo.samples[1].boxes.empty());             // no label file: no objects
  CHECK(any_contains(yolo.problems, "a.txt:2", "zero or negative area"));
  CHECK(any_contains(yolo.problems, "a.txt:3", "not below nc=2"));
  CHECK(any_contains(yolo.problems, "a.txt:4", "expected 'class cx cy w h'"));
  CHECK(any_contains(yolo.problems, "c.jpg", "cannot decode image"));
  test::write_text(root + "/bad.yaml", "train: yolo/images\nnc: 3\nnames: [a, b]\n");
  CHECK(test::error_of([&] { data::load_dataset(root + "/bad.yaml", "train"); }).find("bad.yaml:2: nc is 3 but 2 names") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("the shared coco128-voc set loads from both layouts with the same boxes" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) {
    return test::skip("../shared is absent; the coco128-voc dataset cannot be read");
  }
  const data::Dataset voc = data::load_voc(shared + "/data/coco128-voc", {"train2017"});
  const data::Dataset yolo = data::load_yolo_txt({shared + "/data/coco128-voc/JPEGImages"}, voc.names);
  CHECK(voc.samples.size() == 128);
  CHECK(yolo.samples.size() == 128);
  CHECK(voc.names.size() == 80);
  int64_t boxes = 0;
  double worst = 0;
  for (size_t i = 0; i < voc.samples.size(); ++i) {
    boxes += static_cast<int64_t>(voc.samples[i].boxes.size());
    REQUIRE(voc.samples[i].boxes.size() == yolo.samples[i].boxes.size());
    for (size_t k = 0; k < voc.samples[i].boxes.size(); ++k)  // VOC boxes are the YOLO boxes rounded to whole pixels
      worst = std::max(worst, static_cast<double>(std::fabs(voc.samples[i].boxes[k].x1 - yolo.samples[i].boxes[k].x1)));
  }
  CHECK(boxes == 929);
  CHECK(worst <= 1.0);
  CHECK(voc.problems.empty());
}

// ---- augmentations and the loader ---------------------------------------------------------------


namespace {

const viz::Color kColors[4] = {{220, 20, 20}, {20, 220, 20}, {20, 20, 220}, {220, 220, 20}};

// A grey image with one coloured rectangle per box (box class = colour index).
data::Image painted(int64_t w, int64_t h, const data::Labels& boxes) {
  data::Image img(w, h, 128);
  for (const data::Box& b : boxes)
    for (int64_t y = static_cast<int64_t>(b.y1); y < static_cast<int64_t>(b.y2); ++y)
      for (int64_t x = static_cast<int64_t>(b.x1); x < static_cast<int64_t>(b.x2); ++x) {
        uint8_t* p = img.at(x, y);
        p[0] = kColors[b.cls].r, p[1] = kColors[b.cls].g, p[2] = kColors[b.cls].b;
      }
  return img;
}

data::Box box(float x1, float y1, float x2, float y2, int64_t cls) {
  data::Box b;
  b.x1 = x1, b.y1 = y1, b.x2 = x2, b.y2 = y2, b.cls = cls;
  return b;
}

bool near_color(const uint8_t* p, viz::Color c, int tolerance) {
  return std::abs(p[0] - c.r) <= tolerance && std::abs(p[1] - c.g) <= tolerance && std::abs(p[2] - c.b) <= tolerance;
}

// Every box's centre shows its colour; with `extent`, the coloured pixels also span the box (± tolerance).
void check_boxes_match_pixels(const data::Image& img, const data::Labels& labels, bool extent, float tolerance = 2.0f) {
  for (const data::Box& b : labels) {
    CAPTURE(b.cls);
    const int64_t cx = static_cast<int64_t>((b.x1 + b.x2) / 2), cy = static_cast<int64_t>((b.y1 + b.y2) / 2);
    CHECK(near_color(img.at(cx, cy), kColors[b.cls], 40));
    if (!extent) continue;
    float x1 = 1e9f, y1 = 1e9f, x2 = -1, y2 = -1;
    for (int64_t y = 0; y < img.height; ++y)
      for (int64_t x = 0; x < img.width; ++x)
        if (near_color(img.at(x, y), kColors[b.cls], 40)) {
          x1 = std::min(x1, static_cast<float>(x)), y1 = std::min(y1, static_cast<float>(y));
          x2 = std::max(x2, static_cast<float>(x + 1)), y2 = std::max(y2, static_cast<float>(y + 1));
        }
    CHECK(std::fabs(x1 - b.x1) <= tolerance);
    CHECK(std::fabs(y1 - b.y1) <= tolerance);
    CHECK(std::fabs(x2 - b.x2) <= tolerance);
    CHECK(std::fabs(y2 - b.y2) <= tolerance);
  }
}

const data::Labels kBoxes = {box(10, 20, 60, 70, 0), box(100, 30, 180, 90, 1), box(40, 100, 90, 150, 2), box(150, 110, 190, 150, 3)};

}  // namespace

TEST_CASE("flips keep boxes on their pixels") {
  data::Image img = painted(200, 160, kBoxes);
  data::Labels labels = kBoxes;
  data::flip_horizontal(img, labels);
  check_boxes_match_pixels(img, labels, true, 0.5f);
  data::flip_vertical(img, labels);
  check_boxes_match_pixels(img, labels, true, 0.5f);
}

TEST_CASE("random perspective: translate and scale keep extents; rotation and shear keep centres; tiny boxes are filtered") {
  data::AugmentOptions o = data::AugmentOptions::none();
  o.translate = 0.1f;
  o.scale = 0.3f;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    CAPTURE(seed);
    Generator gen(seed);
    data::Labels labels = kBoxes;
    const data::Image out = data::random_perspective(painted(200, 160, kBoxes), labels, o, gen);
    check_boxes_match_pixels(out, labels, true, 2.5f);
  }
  o.degrees = 20.0f;
  o.shear = 5.0f;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Generator gen(seed);
    data::Labels labels = kBoxes;
    const data::Image out = data::random_perspective(painted(200, 160, kBoxes), labels, o, gen);
    check_boxes_match_pixels(out, labels, false);
  }
  // The reference's box_candidates: boxes under 2 px or with aspect ratio ≥ 20 are dropped.
  data::Labels thin = {box(10, 10, 11.5f, 100, 0), box(50, 50, 100, 100, 1)};
  Generator gen(1);
  data::random_perspective(painted(200, 160, thin), thin, data::AugmentOptions::none(), gen);
  REQUIRE(thin.size() == 1);
  CHECK(thin[0].cls == 1);
}

TEST_CASE("mosaic places four images and their boxes; mixup keeps both sets; HSV changes colours, not boxes") {
  const data::Image a = painted(200, 160, kBoxes);
  const std::array<data::Labels, 4> parts = {kBoxes, kBoxes, kBoxes, kBoxes};
  data::AugmentOptions o = data::AugmentOptions::none();
  o.scale = 0.2f;
  o.translate = 0.1f;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    CAPTURE(seed);
    Generator gen(seed);
    data::Labels labels;
    const data::Image m = data::mosaic4({&a, &a, &a, &a}, parts, 192, labels, o, gen);
    CHECK(m.width == 192);
    CHECK(m.height == 192);
    CHECK_FALSE(labels.empty());
    check_boxes_match_pixels(m, labels, false);
  }
  data::Image img = painted(200, 160, kBoxes);
  data::Labels labels = kBoxes;
  Generator gen(3);
  data::mixup(img, labels, painted(200, 160, {}), {box(1, 1, 5, 5, 0)}, gen);
  CHECK(labels.size() == kBoxes.size() + 1);
  data::Image hsv = painted(200, 160, kBoxes);
  Generator g2(4);
  data::augment_hsv(hsv, 0.015f, 0.7f, 0.4f, g2);
  CHECK(hsv.pixels != painted(200, 160, kBoxes).pixels);
  // HSV round trip without gains is close to the identity (OpenCV's 8-bit HSV quantises hue).
  data::Image same = painted(200, 160, kBoxes);
  Generator g3(5);
  data::augment_hsv(same, 0, 0, 0, g3);
  CHECK(same.pixels == painted(200, 160, kBoxes).pixels);
  uint8_t hsv_px[3], rgb[3];
  const uint8_t orange[3] = {230, 120, 30};
  data::rgb_to_hsv(orange, hsv_px);
  data::hsv_to_rgb(hsv_px, rgb);
  for (int c = 0; c < 3; ++c) CHECK(std::abs(rgb[c] - orange[c]) <= 3);
}

TEST_CASE("loader: batches, targets, determinism across worker counts, and epochs") {
  const std::string root = test::temp_path("loader");
  fs::remove_all(root);
  std::string list;
  for (int i = 0; i < 10; ++i) {
    const std::string id = "img" + std::to_string(i);
    data::Labels b = {box(10.0f + i, 20, 60, 70, i % 4), box(100, 30, 150, 80, (i + 1) % 4)};
    save(root + "/JPEGImages/" + id + ".png", painted(160 + 8 * i, 120, b));
    std::string objects;
    for (const data::Box& x : b)
      objects += voc_object(std::vector<std::string>{"a", "b", "c", "d"}[x.cls], x.x1 + 1, x.y1 + 1, x.x2, x.y2);
    test::write_text(root + "/Annotations/" + id + ".xml", voc_xml(160 + 8 * i, 120, objects));
    list += id + "\n";
  }
  test::write_text(root + "/ImageSets/Main/train.txt", list);
  test::write_text(root + "/classes.txt", "a\nb\nc\nd\n");
  const data::Dataset ds = data::load_voc(root, {"train"});
  REQUIRE(ds.samples.size() == 10);

  auto run_epoch = [&](int workers, int64_t epoch, bool augment) {
    data::LoaderOptions o;
    o.img_size = 128;
    o.batch_size = 4;
    o.workers = workers;
    o.seed = 7;
    o.augment = augment;
    o.aug.mixup = 0.5f;
    data::DataLoader loader(ds, o);
    CHECK(loader.size() == 3);
    loader.start_epoch(epoch);
    std::vector<float> all;
    data::Batch b;
    int batches = 0;
    while (loader.next(b)) {
      ++batches;
      CHECK(b.images.shape()[1] == 3);
      CHECK(b.images.shape()[2] == 128);
      CHECK(b.targets.dim() == 2);
      if (b.targets.numel()) CHECK(b.targets.shape()[1] == 6);
      const auto t = b.targets.to_vector();
      for (size_t r = 0; r < t.size(); r += 6) {
        CHECK(t[r] < b.images.shape()[0]);
        for (int k = 2; k < 6; ++k) CHECK((t[r + k] >= 0.0f && t[r + k] <= 1.0f));
      }
      const auto px = b.images.to_vector();
      all.insert(all.end(), px.begin(), px.end());
      all.insert(all.end(), t.begin(), t.end());
    }
    CHECK(batches == 3);
    return all;
  };
  const auto serial = run_epoch(0, 0, true);
  CHECK(run_epoch(2, 0, true) == serial);   // same batches whatever the workers
  CHECK(run_epoch(3, 0, true) == serial);
  CHECK(run_epoch(2, 1, true) != serial);   // another epoch: another order and other augmentations
  const auto plain = run_epoch(2, 0, false);
  CHECK(plain == run_epoch(0, 0, false));
  // Without augmentation, each image is letterboxed and its targets are its boxes.
  data::LoaderOptions o;
  o.img_size = 128;
  o.augment = false;
  o.shuffle = false;
  o.workers = 0;
  data::DataLoader loader(ds, o);
  auto [img, labels] = loader.sample(0, 0);
  REQUIRE(labels.size() == 2);
  check_boxes_match_pixels(img, labels, true, 2.0f);
  fs::remove_all(root);
}
