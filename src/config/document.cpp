// Splitting the text into YAML documents before building nodes.
//
// yaml-cpp 0.7's YAML::LoadAll never returns on a stray flow indicator at
// document level (",a: 1"): the parser yields an empty document without
// consuming the token, forever, and LoadAll allocates until memory runs out.
// So the documents are first walked with an event handler that notices a
// document starting where the previous one started, and only then is the
// first document loaded as nodes.

#include "config/document.h"

#include <yaml-cpp/eventhandler.h>

#include <cctype>
#include <sstream>
#include <vector>

namespace config {
namespace {

class DocumentScanner final : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark start;
    bool has_content = false;
  };

  const std::vector<Document>& documents() const { return documents_; }

  // A document that starts where the previous one did consumed nothing.
  bool stalled() const {
    const size_t n = documents_.size();
    return n >= 2 && documents_[n - 1].start.pos == documents_[n - 2].start.pos;
  }

  size_t documents_with_content() const {
    size_t n = 0;
    for (const Document& d : documents_) n += d.has_content ? 1 : 0;
    return n;
  }

  void OnDocumentStart(const YAML::Mark& mark) override { documents_.push_back({mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { saw_content(); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    saw_content();
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    saw_content();
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    saw_content();
  }
  void OnMapEnd() override {}

 private:
  void saw_content() {
    if (!documents_.empty()) documents_.back().has_content = true;
  }

  std::vector<Document> documents_;
};

std::string unexpected_at(const std::string& yaml, const YAML::Mark& mark) {
  if (mark.pos < 0 || static_cast<size_t>(mark.pos) >= yaml.size()) {
    return "invalid YAML: unexpected token";
  }
  const auto c = static_cast<unsigned char>(yaml[static_cast<size_t>(mark.pos)]);
  if (!std::isprint(c)) return "invalid YAML: unexpected token";
  return std::string("invalid YAML: unexpected '") + static_cast<char>(c) +
         "' outside a flow collection ({...} or [...])";
}

}  // namespace

std::optional<YAML::Node> parse_single_document(Context& ctx, const std::string& yaml) {
  std::istringstream stream(yaml);
  YAML::Parser parser(stream);
  DocumentScanner scanner;
  // Two documents with content are enough to refuse the file.
  while (scanner.documents_with_content() < 2 && parser.HandleNextDocument(scanner)) {
    if (scanner.stalled()) {
      const YAML::Mark at = scanner.documents().back().start;
      ctx.error(position_of(at), unexpected_at(yaml, at));
      return std::nullopt;
    }
  }
  if (scanner.documents_with_content() > 1) {
    const auto& documents = scanner.documents();
    auto second = documents.begin();
    while (!second->has_content) ++second;
    ++second;
    while (!second->has_content) ++second;
    ctx.error(position_of(second->start),
              "expected one YAML document, found more; remove the extra '---' separators");
    return std::nullopt;
  }
  return YAML::Load(yaml);
}

}  // namespace config
