// Errors a file can cause. Every refusal of a damaged or unsupported file is a FormatError
// (the page shows its message); anything else thrown is a bug of this decoder.
export class FormatError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FormatError';
  }
}

// A file that names a shared model this decoder was not given.
export class ModelError extends FormatError {
  constructor(message) {
    super(message);
    this.name = 'ModelError';
  }
}
