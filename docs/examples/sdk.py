from seq2seq_client import DecodeOptions, Seq2SeqClient

with Seq2SeqClient("localhost:50051", timeout=10) as client:
    fr = client.translate("A tool to compress files", "fr")
    print(fr.text, "|", fr.model.name, fr.model.provider)
    beam = client.translate(
        "Lua bindings for Pure Data", "fr", options=DecodeOptions(beam_size=3, n_best=3)
    )
    print([(round(h.score, 2), h.text) for h in beam.hypotheses])
    answer = client.answer("Who maintains it?", "xfonts-terminus is maintained by Anton Zinoviev.")
    print(answer.answer if answer.answerable else "(not in the context)")
