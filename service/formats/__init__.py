"""Translated files: Word, PowerPoint, OpenDocument, EPUB, subtitles, Markdown, PDF, web
pages and plain text, with their structure and inline formatting kept.

Nothing here knows gRPC, HTTP, asyncio or a model. `registry.open_file(name, data)` refuses
bad files and returns the file's units (`units.Unit`: formatted runs); `plan.plan_units`
splits them into the sentences to translate; `FilePlan.assemble` puts the translations back
(inline formatting placed by `restyle` from word links, which `align` reads from the model's
attention); `OpenedFile.write` returns the translated file. docs/documents.md has the
formats, the libraries and why, what is kept, and the measurements.
"""
