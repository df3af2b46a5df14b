// The main() of every test executable (include it once, first, instead of doctest's own main).
//
// Honest skips: a test case that cannot run here (no ../shared, no AVX-512, no GPU) lives in a
// "requires_*" test suite and calls test::skip(reason). tests/CMakeLists.txt registers each such
// suite as its own CTest entry with SKIP_RETURN_CODE 77, so CTest counts it as skipped, never as
// passed; the entry for the rest of the executable excludes those suites. The process exits 77 when
// a test case skipped and none failed, and fails when its filters left no test case to run (a
// misspelt suite must not pass by running nothing).
#pragma once
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace pdyolo::test {

inline constexpr int kSkipReturnCode = 77;

inline std::vector<std::string>& skip_reasons() {
  static std::vector<std::string> reasons;
  return reasons;
}
inline int& test_cases_started() {
  static int count = 0;
  return count;
}

// Records that the current test case cannot run here (main prints the reason once, as
// "SKIPPED: reason"); the caller returns right after.
inline void skip(const std::string& reason) { skip_reasons().push_back(reason); }

// Counts the test cases that start (doctest's listener interface: every method must exist).
struct StartCounter : doctest::IReporter {
  explicit StartCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++test_cases_started(); }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("pdyolo_start_counter", 1, StartCounter);

}  // namespace pdyolo::test

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int failed = context.run();
  if (context.shouldExit()) return failed;  // --help, --list-test-cases, ...
  if (failed) return failed;
  if (pdyolo::test::test_cases_started() == 0) {
    std::fprintf(stderr, "no test case matched the filters: nothing was tested\n");
    return 1;
  }
  if (pdyolo::test::skip_reasons().empty()) return 0;
  for (const std::string& reason : pdyolo::test::skip_reasons()) std::printf("SKIPPED: %s\n", reason.c_str());
  return pdyolo::test::kSkipReturnCode;
}
