// Test data (used only by the tests): the vectors of the Fernet specification,
// github.com/fernet/spec generate.json, verify.json and invalid.json.

/** The Fernet specification's vectors: secret, generated token, its time and IV, and invalid tokens. */
export const FERNET_SPEC = {
  SPEC_SECRET: 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=',
  /** generate.json: "hello" at 1985-10-26T01:20:00-07:00 with IV 00..0f; verify.json decrypts it. */
  SPEC_TOKEN: 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
  SPEC_NOW: Date.parse('1985-10-26T01:20:00-07:00'),
  SPEC_IV: Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
  /** invalid.json: [description, token, now (ISO), ttl seconds]. */
  SPEC_INVALID: [
    ['incorrect mac', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==', '1985-10-26T01:20:01-07:00', 60],
    ['too short', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==', '1985-10-26T01:20:01-07:00', 60],
    ['invalid base64', '%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==', '1985-10-26T01:20:01-07:00', 60],
    ['payload size not multiple of block size', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm', '1985-10-26T01:20:01-07:00', 60],
    ['payload padding error', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==', '1985-10-26T01:20:01-07:00', 60],
    ['far-future TS (unacceptable clock skew)', 'gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==', '1985-10-26T01:20:01-07:00', 60],
    ['expired TTL', 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==', '1985-10-26T01:21:31-07:00', 60],
    ['incorrect IV (causes padding error)', 'gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==', '1985-10-26T01:20:01-07:00', 60],
  ] as [string, string, string, number][],
};
