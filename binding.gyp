{
  "targets": [
    {
      "target_name": "tcpao",
      "sources": [
        "native/addon.cc",
        "native/ao_connect.cc",
        "native/args.cc",
        "native/bindings.cc",
        "native/js_errors.cc",
        "native/tcp_ao.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "cflags": ["-Wall", "-Wextra", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "cflags_cc": ["-std=c++17"],
      "defines": ["NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/tcp_ao.cc"] }]
      ]
    }
  ]
}
