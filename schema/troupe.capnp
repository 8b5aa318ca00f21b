# Troupe's client API over Cap'n Proto RPC: authenticate for a session, then generate (completion
# or chat) with the tokens streamed back through a flow-controlled sink, list models, check health.
@0x916fbea3310d800e;

$import "/capnp/c++.capnp".namespace("troupe::schema");

# The bootstrap capability. Errors are exceptions: FAILED with a message naming the parameter for a
# refused request or key; OVERLOADED while no shard group is live (retry later).
interface Troupe {
  # With API keys configured, a wrong or empty key fails with "invalid API key"; without keys any
  # key (empty included) opens a session.
  authenticate @0 (apiKey :Text) -> (session :Session);
}

interface Session {
  # A completion of `request.prompt`. Text deltas go to `sink` as they are generated; the call
  # returns when every sample has finished. Cancelling the call (dropping its promise) or dropping
  # the connection aborts the request at its shard group.
  generate @0 (request :GenerateRequest, sink :TokenSink) -> (result :GenerateResult);
  # A chat completion of `request.messages`, rendered with the model's chat template.
  chat @1 (request :ChatRequest, sink :TokenSink) -> (result :GenerateResult);
  models @2 () -> (models :List(Model));
  # ready: at least one shard group is live (what HTTP /health answers with 200).
  health @3 () -> (ready :Bool, liveGroups :UInt32);
}

# The client's end of a generation's stream. The server sends a write only after the previous one's
# flow control allows it, so a slow reader slows its own generation's delivery, nobody else's.
interface TokenSink {
  write @0 (chunk :Chunk) -> stream;
}

struct Chunk {
  sample @0 :UInt32;            # which of the request's n samples
  text @1 :Text;                # the text delta (may be empty, e.g. a token that ends in the middle
                                # of a UTF-8 character, or a held-back stop string prefix)
  logprobs @2 :List(TokenLogprob);  # for this delta's tokens, when the request asked (logprobs >= 0)
  finishReason @3 :Text;        # set on the sample's last chunk: "stop", "length" or "abort"
  tokenIds @4 :List(Int32);     # the generated token ids behind this delta (a final stop token included)
}

struct TokenLogprob {
  token @0 :Data;               # the token's bytes (may be part of a UTF-8 character)
  logprob @1 :Float32;
  top @2 :List(Alternative);    # best first; empty when logprobs = 0
}

struct Alternative {
  token @0 :Data;
  logprob @1 :Float32;
}

# Every sampling parameter of the HTTP API, with its defaults. Where JSON has "absent", a sentinel
# stands for it: maxTokens 0, logprobs -1, hasSeed false. Ranges and messages are the HTTP API's.
struct Sampling {
  maxTokens @0 :Int32 = 0;        # >= 1; 0: until the context ends
  temperature @1 :Float32 = 1.0;  # [0, 2]; 0 = greedy
  topP @2 :Float32 = 1.0;         # (0, 1]
  topK @3 :Int32 = 0;             # -1 or 0 = off
  minP @4 :Float32 = 0.0;         # [0, 1]
  presencePenalty @5 :Float32 = 0.0;   # [-2, 2]
  frequencyPenalty @6 :Float32 = 0.0;  # [-2, 2]
  repetitionPenalty @7 :Float32 = 1.0; # > 0; 1 = off
  n @8 :Int32 = 1;                # samples, 1..16
  stop @9 :List(Text);            # at most 16 stop strings, none empty
  stopTokenIds @10 :List(Int32);
  ignoreEos @11 :Bool = false;
  skipSpecialTokens @12 :Bool = true;
  seed @13 :Int64;
  hasSeed @14 :Bool = false;      # seed is used only when set
  logprobs @15 :Int32 = -1;       # -1: none; 0: the chosen token's; N (<= 20): plus the top N
  user @16 :Text;
  cache @17 :Bool = true;         # false: bypass the response cache
}

struct GenerateRequest {
  model @0 :Text;                 # must equal the served model's name (see models())
  prompt :union {
    text @1 :Text;
    tokens @2 :List(Int32);
  }
  sampling @3 :Sampling;
}

struct Message {
  role @0 :Text;                  # system, developer (= system), user, assistant, tool
  content @1 :Text;
}

struct ChatRequest {
  model @0 :Text;
  messages @1 :List(Message);
  addGenerationPrompt @2 :Bool = true;
  sampling @3 :Sampling;
}

struct GenerateResult {
  finishReasons @0 :List(Text);   # per sample, in sample order
  promptTokens @1 :UInt32;
  completionTokens @2 :UInt32;    # all samples together
  promptTokenIds @3 :List(Int32); # the prompt as the model saw it (after the chat template)
}

struct Model {
  id @0 :Text;
  maxModelLen @1 :UInt32;
  ownedBy @2 :Text;
}
