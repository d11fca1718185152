CREATE TABLE registry_scaffold (id INTEGER PRIMARY KEY);
