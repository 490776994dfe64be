"""Transport-neutral text handling for documents: sentences, structure, HTML, language.

Nothing here knows gRPC, HTTP, asyncio or onnxruntime. A front end turns a document into
`Document` pieces (`plain.split_text`, `html.split_html`), sends the pieces marked for
translation to the data plane, and puts the results back with `Document.assemble`.
"""
