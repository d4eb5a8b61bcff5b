'use strict';
// Encrypts or decrypts with the Node.js sailor's own Encryptor, for interoperability tests.
//   node crypto.js encrypt <password> <iv> <base64|raw>   (JSON on stdin, ciphertext out)
//   node crypto.js decrypt <password> <iv> <base64|raw>   (ciphertext on stdin, JSON out)
const path = require('path');
const Encryptor = require(path.join(__dirname, 'node_modules/elasticio-sailor-nodejs/lib/encryptor.js'));

const [mode, password, iv, encoding] = process.argv.slice(2);
const encryptor = new Encryptor(password, iv);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
    const input = Buffer.concat(chunks);
    const format = encoding === 'raw' ? undefined : 'base64';
    if (mode === 'encrypt') {
        process.stdout.write(encryptor.encryptMessageContent(JSON.parse(input.toString()), format));
    } else {
        process.stdout.write(JSON.stringify(encryptor.decryptMessageContent(input, format)));
    }
});
