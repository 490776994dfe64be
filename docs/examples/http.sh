curl -s localhost:8000/v1/translate -H 'content-type: application/json' \
  -d '{"text": "Lua bindings for Pure Data. A tool to compress files.", "target_language": "fr", "options": {"target_prefix": "Bibliothèque"}}'
curl -s localhost:8000/translate -d q='A tool to compress files' -d source=auto -d target=de
