package ward

// Topology says where a ward deployment keeps and processes code and data,
// as GET /v1/topology answers it: the server that answered, the places
// data is kept, the runners tasks run on and the sinks logs go to. It
// names hosts, paths and databases, never credentials.
type Topology struct {
	Server   TopologyServer `json:"server"`
	Places   []Place        `json:"places"`
	Runners  []Runner       `json:"runners"`
	LogSinks []Place        `json:"log_sinks"`
}

// TopologyServer describes the server that answered.
type TopologyServer struct {
	Version string `json:"version"`
	Host    string `json:"host"`
	// API, Internal and Metrics are the listen addresses of the public
	// API, the runner API (mutual TLS; "" when off) and the metrics
	// listener without authentication ("" when off).
	API      string `json:"api"`
	Internal string `json:"internal,omitempty"`
	Metrics  string `json:"metrics,omitempty"`
	// InProcessRunner says whether tasks also run inside this server.
	InProcessRunner bool `json:"in_process_runner"`
}

// Place is somewhere ward keeps data, or sends it.
type Place struct {
	Name  string `json:"name"`  // what ward calls it: store, keystore, root_key, …
	Kind  string `json:"kind"`  // sqlite, postgres, file, environment, directory, memory, stderr, notify
	Where string `json:"where"` // a path, or host:port/database
	Holds string `json:"holds"` // what is kept or sent there
	// Encrypted says whether ward encrypts what is sensitive in it
	// (bodies, code, config and secret values, keys).
	Encrypted bool `json:"encrypted"`
}
