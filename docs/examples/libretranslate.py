from libretranslatepy import LibreTranslateAPI  # LibreTranslate's own client, unchanged

print(LibreTranslateAPI("http://localhost:8000").translate("A tool to compress files", "en", "fr"))
