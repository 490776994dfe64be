// Calls Translate, Summarize, Answer and ListModels on ADDRESS using only the .proto file,
// then prints one JSON object with the replies. Exit code 1 on any RPC error.
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const address = process.argv[2] || "127.0.0.1:50051";
const protoPath = path.resolve(__dirname, "..", "..", "protos", "seq2seq", "v1", "seq2seq.proto");
const definition = protoLoader.loadSync(protoPath, {
  keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const seq2seq = grpc.loadPackageDefinition(definition).seq2seq.v1;
const client = new seq2seq.Seq2Seq(address, grpc.credentials.createInsecure());

function call(method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 30000);
    client[method](request, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

(async () => {
  try {
    const out = {
      translate: await call("Translate", {
        text: "Establish TCP connection using SOCKS4/5 or HTTP tunnel", target_language: "fr",
      }),
      summarize: await call("Summarize", {
        text: "NaCl is a new easy-to-use high-speed software library for network communication, "
          + "encryption, decryption, signatures, etc.",
      }),
      answer: await call("Answer", {
        question: "Who maintains xfonts-terminus?",
        context: "xfonts-terminus is a Debian package in the fonts section. "
          + "It is maintained by Anton Zinoviev.",
      }),
      models: await call("ListModels", {}),
    };
    let invalid;
    try {
      await call("Translate", { text: "", target_language: "fr" });
    } catch (error) {
      invalid = { code: error.code, details: error.details };
    }
    out.invalid = invalid;
    console.log(JSON.stringify(out));
    client.close();
  } catch (error) {
    console.error(`RPC failed: ${error.code} ${error.details}`);
    process.exit(1);
  }
})();
